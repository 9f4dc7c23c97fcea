"""`voicechain up` as a user runs it: embedded Redis, SQLite, generated key, Flower behind auth, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.services import free_port, wait_http_ok

pytestmark = [pytest.mark.integration, pytest.mark.models]


def test_up_runs_the_stack_and_stops_cleanly(tmp_path, speech) -> None:
    data_dir = tmp_path / "data"
    port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")}
    realtime_port = free_port()
    env["VOICECHAIN_REALTIME_PORT"] = str(realtime_port)
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "up", "--data-dir", str(data_dir), "--port", str(port),
         "--flower-port", str(flower_port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout_s=90)
        key = (data_dir / "api_key").read_text().strip()
        assert key in (tmp_path / "up.log").read_text(), "up should print the API key to use"
        # the realtime pool is part of the stack (it loads the models, so give it time)
        wait_http_ok(f"http://127.0.0.1:{realtime_port}/healthz", timeout_s=120)
        out = tmp_path / "reply.wav"
        submit = subprocess.run(
            [
                sys.executable,
                "-m",
                "api.cli",
                "submit",
                "--say",
                "What is the capital of France?",
                "--url",
                f"http://127.0.0.1:{port}",
                "--api-key",
                key,
                "--out",
                str(out),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )  # fmt: skip  (README's first command: no audio file, the local voice speaks the question)
        assert submit.returncode == 0, submit.stdout + submit.stderr
        job = json.loads(submit.stdout)
        assert job["status"] == "succeeded" and out.stat().st_size > 10_000
        assert "capital" in job["transcript"].lower() and "france" in job["transcript"].lower(), job
        restarted_worker_finishes_a_turn(tmp_path, up.pid, port, key, speech)
        flower = f"http://127.0.0.1:{flower_port}"
        wait_http_ok_or_401(flower + "/api/workers")
        assert httpx.get(flower + "/api/workers", timeout=5).status_code == 401, "Flower must not be open"
        password = (data_dir / "flower_password").read_text().strip()
        workers = httpx.get(flower + "/api/workers", auth=("admin", password), timeout=10)
        assert workers.status_code == 200
        assert flower_stage_tasks(flower, password, job["id"]) == {
            f"voicechain.stage.{stage}" for stage in ("stt", "agent", "policy", "tts")
        }, "Flower should list the job's four stage tasks (workers send task events)"
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        finally:
            log.close()
    assert up.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
    leftovers = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True).stdout.split()
    assert not leftovers, f"children still running after Ctrl-C: {leftovers}"


def worker_pids(up_pid: int) -> set[int]:
    """The Celery worker children of the `up` process (not the test session's own worker)."""
    pids = set()
    for pid in subprocess.run(["pgrep", "-P", str(up_pid)], capture_output=True, text=True).stdout.split():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in cmdline and b"celery" in cmdline:
            pids.add(int(pid))
    return pids


def restarted_worker_finishes_a_turn(tmp_path, up_pid: int, port: int, key: str, speech) -> None:
    """SIGKILL the worker child of `up`: the supervisor starts a new one and turns keep finishing."""
    before = worker_pids(up_pid)
    assert before, "up should run a worker"
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (worker_pids(up_pid) - before):
        time.sleep(0.2)
    assert worker_pids(up_pid) - before, "the supervisor should have restarted the worker"
    out = tmp_path / "again.wav"
    again = subprocess.run(
        [sys.executable, "-m", "api.cli", "submit", str(speech.wav("Are you still there?")), "--url",
         f"http://127.0.0.1:{port}", "--api-key", key, "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr


def flower_stage_tasks(flower: str, password: str, job_id: str) -> set[str]:
    """Names of the tasks Flower saw for this job (task args carry only the job id)."""
    deadline = time.monotonic() + 20
    names: set[str] = set()
    while time.monotonic() < deadline:
        tasks = httpx.get(flower + "/api/tasks", params={"limit": 200}, auth=("admin", password), timeout=10)
        assert tasks.status_code == 200, tasks.text
        names = {t["name"] for t in tasks.json().values() if job_id in str(t.get("args"))}
        if len(names) == 4:
            break
        time.sleep(0.5)
    return names


def wait_http_ok_or_401(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code in (200, 401):
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


__all__ = ["wait_http_ok"]
