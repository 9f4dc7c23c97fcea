"""Issue 14's spoken misses through real API and worker processes: new phrasings, another voice.

The requests are spoken by espeak-ng (a voice the models were never tuned on) and by piper, go through
`POST /v1/jobs`, Whisper, the agent stage's router and the tool, exactly as a user's audio would.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.workers.test_chain import submit, wait_done

pytestmark = [pytest.mark.integration, pytest.mark.models]


def espeak_wav(directory: Path, text: str) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install -y espeak-ng; .ci/run does)")
    path = directory / f"espeak-{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.mark.parametrize("voice", ["espeak-ng", "piper"])
def test_unseen_weather_phrasing_calls_the_weather_tool(agent_stack: Stack, speech, tmp_path, voice) -> None:
    text = "How warm will it be in Madrid tomorrow afternoon?"
    wav = espeak_wav(tmp_path, text) if voice == "espeak-ng" else speech.wav(text)
    with agent_stack.client() as client:
        job = wait_done(client, submit(client, wav)["id"])
    assert job["status"] == "succeeded", job
    calls = [e for e in job["events"] if e["type"] == "tool_call"]
    assert [c["name"] for c in calls] == ["get_weather"], (job["transcript"], job["events"])
    assert calls[0]["arguments"]["city"].casefold() == "madrid", job["transcript"]


def test_order_number_said_digit_by_digit(agent_stack: Stack, speech) -> None:
    with agent_stack.client() as client:
        job = wait_done(client, submit(client, speech.wav("Where is my order four two seven?"))["id"])
    assert job["status"] == "succeeded", job
    (call,) = [e for e in job["events"] if e["type"] == "tool_call"]
    assert call["name"] == "get_order_status" and call["arguments"] == {"order_id": "427"}, job["transcript"]


def test_being_put_through_to_a_person_hands_off(agent_stack: Stack, tmp_path) -> None:
    wav = espeak_wav(tmp_path, "Can you put me through to a person, please?")
    with agent_stack.client() as client:
        job = wait_done(client, submit(client, wav)["id"])
    assert job["status"] == "succeeded" and job["agent"] == "Support", (job["transcript"], job["events"])
    assert [e["type"] for e in job["events"]] == ["handoff"]
