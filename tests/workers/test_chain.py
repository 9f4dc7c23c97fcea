"""The chained path end to end: real API process, real Celery worker process, real Redis, real models."""

from __future__ import annotations

import io
import os
import re
import signal
import time
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from tests.conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.models]


def words(text: str | None) -> set[str]:
    return set(re.sub(r"[^a-z0-9 ]", " ", (text or "").lower()).split())


def submit(client: httpx.Client, path, **fields: str) -> dict[str, Any]:
    with path.open("rb") as handle:
        response = client.post("/v1/jobs", files={"file": (path.name, handle, "audio/wav")}, data=fields)
    assert response.status_code == 202, response.text
    return response.json()


def wait_done(client: httpx.Client, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def assert_spoken(audio: bytes) -> float:
    samples, rate = soundfile.read(io.BytesIO(audio), dtype="float32")
    assert rate == 22_050 and len(samples) > rate // 2, "reply audio should be at least half a second"
    assert float(np.sqrt(np.mean(samples**2))) > 0.01, "reply audio is silence"
    return len(samples) / rate


def test_one_spoken_turn_goes_through_every_stage(stack: Stack, speech) -> None:
    question = speech.wav("What is the capital of France?")
    with stack.client() as client:
        accepted = submit(client, question)
        assert accepted["status"] in ("queued", "running")
        assert [s["name"] for s in accepted["stages"]] == ["stt", "agent", "policy", "tts"]
        job = wait_done(client, accepted["id"])
        assert job["status"] == "succeeded", job
        assert {"capital", "france"} <= words(job["transcript"]), job["transcript"]
        assert job["reply_text"] and job["reply_text"].rstrip()[-1] in ".!?", job["reply_text"]
        assert job["policy"]["verdict"] in ("allowed", "redacted")
        assert all(s["status"] == "succeeded" and s["duration_ms"] > 0 for s in job["stages"]), job["stages"]
        assert [s["queue"] for s in job["stages"]] == ["stt", "agent", "policy", "tts"]
        for fmt, content_type in (("wav", "audio/wav"), ("flac", "audio/flac"), ("ogg", "audio/ogg")):
            response = client.get(job["audio_url"], params={"format": fmt})
            assert response.status_code == 200 and response.headers["content-type"].startswith(content_type)
            assert_spoken(response.content)


def test_second_turn_remembers_the_first(stack: Stack, speech) -> None:
    with stack.client() as client:
        first = wait_done(client, submit(client, speech.wav("My name is Alice."))["id"])
        second = submit(client, speech.wav("What is my name?"), conversation_id=first["conversation_id"])
        second = wait_done(client, second["id"])
        assert second["status"] == "succeeded"
        conversation = client.get(f"/v1/conversations/{first['conversation_id']}").json()
    assert [t["id"] for t in conversation["turns"]] == [first["id"], second["id"]]
    assert "alice" in words(conversation["turns"][0]["transcript"])
    assert conversation["agent"] == "Assistant"


def _pool_children(worker_pid: int) -> list[int]:
    out = os.popen(f"pgrep -P {worker_pid}").read().split()
    return [int(pid) for pid in out]


def test_a_worker_killed_mid_stage_does_not_lose_the_turn(stack: Stack, speech) -> None:
    """SIGKILL the pool process while a stage runs: the message is rejected back and runs again."""
    worker = next(p for name, p in stack.processes.running if name == "worker")
    with stack.client() as client:
        job = submit(client, speech.wav("Tell me something interesting about the ocean."))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            doc = client.get(f"/v1/jobs/{job['id']}").json()
            if any(s["status"] == "running" for s in doc["stages"]):
                break
            time.sleep(0.02)
        killed = _pool_children(worker.pid)
        assert killed, "the worker should have a pool child"
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        done = wait_done(client, job["id"], timeout_s=180)
    assert done["status"] == "succeeded", done
    assert max(s["attempts"] for s in done["stages"]) >= 2, done["stages"]


def test_cli_submit_writes_the_spoken_answer(stack: Stack, speech, tmp_path) -> None:
    import json
    import subprocess
    import sys

    from tests.conftest import API_KEY

    out = tmp_path / "answer.wav"
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "submit", str(speech.wav("How are you today?")), "--url",
         stack.base_url, "--api-key", API_KEY, "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded" and out.exists()
    assert_spoken(out.read_bytes())
