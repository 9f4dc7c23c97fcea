"""`POST /v1/jobs/{id}/cancel` revokes the job's queued stage tasks and kills the one running, with a
real Celery worker (one prefork process): the worker survives, and the next job is served."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest

from pipelines.settings import STAGES
from tests.conftest import Stack
from tests.workers.test_chain import submit, wait_done
from workers.celery_app import make_celery
from workers.dispatch import stage_task_id

pytestmark = [pytest.mark.integration, pytest.mark.models]
LONG_QUESTION = "Please tell me a long story about the history of the Roman empire and all of its emperors."


def running_stage(client: httpx.Client, job_id: str, timeout_s: float = 60) -> str | None:
    """The stage of the job that is running now, once one is; None if the job ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        running = [s["name"] for s in job["stages"] if s["status"] == "running"]
        if running:
            return running[0]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return None
        time.sleep(0.05)
    raise AssertionError(f"no stage of {job_id} started")


def pool_pids(worker: psutil.Process) -> set[int]:
    return {child.pid for child in worker.children()}


def test_cancel_revokes_queued_tasks_and_kills_the_running_one(stack: Stack, speech) -> None:
    worker = psutil.Process(dict((n, p) for n, p in stack.processes.running)["worker"].pid)
    celery = make_celery(stack.settings)
    with stack.client() as client:
        for _ in range(3):  # the chain may outrun us; then try again with a fresh pair
            running = submit(client, speech.wav(LONG_QUESTION))
            queued = submit(client, speech.wav("What is the capital of France?"))  # behind it: one process
            stage = running_stage(client, running["id"])
            if stage is not None:
                break
            wait_done(client, queued["id"])
        assert stage is not None, "never caught a stage running"
        before = pool_pids(worker)
        assert client.post(f"/v1/jobs/{queued['id']}/cancel").status_code == 200
        cancelled = client.post(f"/v1/jobs/{running['id']}/cancel")
        if cancelled.status_code == 409:  # finished in the meantime: nothing left to kill
            pytest.skip("the job finished before it could be cancelled")
        assert cancelled.status_code == 200, cancelled.text

        revoked = set().union(*(celery.control.inspect(timeout=5).revoked() or {}).values())
        for job in (running, queued):
            assert {stage_task_id(job["id"], s) for s in STAGES} <= revoked, revoked
        deadline = time.monotonic() + 30  # the killed pool process is replaced by a fresh one
        while time.monotonic() < deadline and not (pool_pids(worker) - before):
            time.sleep(0.1)
        assert pool_pids(worker) - before, "the running stage's process should have been killed"
        assert worker.is_running(), "the worker itself must survive"

        after = client.get(f"/v1/jobs/{running['id']}").json()
        assert after["status"] == "cancelled", after
        ended = {s["name"]: s for s in after["stages"]}
        assert ended[stage]["status"] == "cancelled", after["stages"]  # not `running` forever
        assert ended[stage]["finished_at"], ended[stage]
        later = STAGES[STAGES.index(stage) + 1 :]
        assert all(s["attempts"] == 0 for s in after["stages"] if s["name"] in later), after["stages"]
        assert client.get(f"/v1/jobs/{running['id']}/audio").status_code == 404
        assert client.get(f"/v1/jobs/{queued['id']}").json()["status"] == "cancelled"

        nxt = wait_done(client, submit(client, speech.wav("Good morning."))["id"], timeout_s=180)
        assert nxt["status"] == "succeeded", nxt  # nothing else was lost with the killed process
        final = client.get(f"/v1/jobs/{running['id']}").json()
        assert [s["status"] for s in final["stages"]] == [s["status"] for s in after["stages"]], final
