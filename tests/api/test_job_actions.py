"""`POST /v1/jobs/{id}/retry` runs a failed job again from its failed stage; `/cancel` stops one."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete

from pipelines.storage.database import session_scope
from pipelines.storage.models import Artifact, StageStatus, TurnStatus
from pipelines.storage.turns import get_turn, stage_run
from tests.conftest import Stack
from tests.workers.test_chain import submit, wait_done

pytestmark = [pytest.mark.integration, pytest.mark.models]


def test_retry_resumes_from_the_failed_stage(stack: Stack, speech) -> None:
    with stack.client() as client:
        job = wait_done(client, submit(client, speech.wav("Good morning."))["id"])
        assert job["status"] == "succeeded"
        assert client.post(f"/v1/jobs/{job['id']}/retry").status_code == 409  # only failed jobs
        with session_scope(stack.settings.resolved_database_url) as session:  # as if tts had failed for good
            turn = get_turn(session, job["id"])
            run = stage_run(turn, "tts")
            run.status, run.error = StageStatus.FAILED, "ProviderError: voice unavailable"
            turn.status, turn.error = TurnStatus.FAILED, "tts: ProviderError: voice unavailable"
            output = (Artifact.turn_id == turn.id) & (Artifact.kind == "output_audio")
            session.execute(delete(Artifact).where(output))
        retried = client.post(f"/v1/jobs/{job['id']}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "queued"
        done = wait_done(client, job["id"])
        assert done["status"] == "succeeded", done
        attempts = {s["name"]: s["attempts"] for s in done["stages"]}
        assert attempts == {"stt": 1, "agent": 1, "policy": 1, "tts": 1}, attempts  # earlier stages kept
        assert client.get(done["audio_url"]).status_code == 200


def test_cancel_stops_a_job_and_a_final_job_cannot_be_cancelled(stack: Stack, speech) -> None:
    with stack.client() as client:
        job = submit(client, speech.wav("Please cancel this question."))
        cancelled = client.post(f"/v1/jobs/{job['id']}/cancel")
        if cancelled.status_code == 409:  # the chain was faster than us: nothing left to cancel
            assert wait_done(client, job["id"])["status"] == "succeeded"
            return
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
        time.sleep(5)  # any stage still running finishes, and must keep nothing
        after = client.get(f"/v1/jobs/{job['id']}").json()
        assert after["status"] == "cancelled", after
        assert client.get(f"/v1/jobs/{job['id']}/audio").status_code == 404
        assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
        assert client.post(f"/v1/jobs/{job['id']}/retry").status_code == 409
