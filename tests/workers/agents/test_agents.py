"""Agents on the chained path with real API and worker processes, Redis and models: tools, handoffs,
guardrails, review mode, the SSE event stream and signed webhooks."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from pipelines import webhooks
from tests.conftest import Stack
from tests.workers.agents.conftest import WEBHOOK_SECRET, Receiver
from tests.workers.test_chain import submit, wait_done, words

pytestmark = [pytest.mark.integration, pytest.mark.models]


def wait_status(
    client: httpx.Client, job_id: str, statuses: set[str], timeout_s: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {statuses}: {job}")


def read_sse(client: httpx.Client, job_id: str, timeout_s: float = 120) -> list[tuple[str, str, dict]]:
    """Read the whole stream: it ends by itself after the terminal event."""
    events, current = [], {}
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout_s) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append((current["id"], current["event"], json.loads(current["data"])))
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value
    return events


def test_tool_call_is_stored_on_the_job_and_streamed(agent_stack: Stack, speech) -> None:
    with agent_stack.client() as client:
        job = wait_done(client, submit(client, speech.wav("What is the weather in Paris?"))["id"])
        assert job["status"] == "succeeded", job
        (call,) = [e for e in job["events"] if e["type"] == "tool_call"]
        assert call["name"] == "get_weather" and call["arguments"] == {"city": "Paris"}
        assert call["result"] == job["reply_text"] and call["duration_ms"] is not None
        assert "paris" in words(job["spoken_text"]) and job["reply_text"].endswith(".")
        stream = read_sse(client, job["id"])
    names = [name for _, name, _ in stream]
    assert names[0] == "job.queued" and names[-1] == "job.done"
    assert names.count("stage.started") == 4 and names.count("stage.finished") == 4
    assert "tool.called" in names


def test_no_tool_for_a_request_that_does_not_need_one(agent_stack: Stack, speech) -> None:
    with agent_stack.client() as client:
        job = wait_done(client, submit(client, speech.wav("Tell me a joke."))["id"])
    assert job["status"] == "succeeded" and job["events"] == []
    assert job["reply_text"].rstrip(" \"'”’)")[-1] in ".!?", job["reply_text"]


def test_turn_two_depends_on_turn_one(agent_stack: Stack, speech) -> None:
    """Turn one asks for the order number; turn two's bare answer only makes sense after it."""
    with agent_stack.client() as client:
        first = wait_done(client, submit(client, speech.wav("Where is my order?"))["id"])
        assert first["reply_text"] == "Could you tell me your order number?" and first["events"] == []
        second = submit(client, speech.wav("It is 1042."), conversation_id=first["conversation_id"])
        second = wait_done(client, second["id"])
        agent_stage = next(s for s in second["stages"] if s["name"] == "agent")
        conversation = client.get(f"/v1/conversations/{first['conversation_id']}").json()
    assert second["status"] == "succeeded" and agent_stage["status"] == "succeeded"
    (call,) = second["events"]
    assert call["name"] == "get_order_status" and call["arguments"] == {"order_id": "1042"}, second
    assert "shipped" in second["spoken_text"]
    assert [t["seq"] for t in conversation["turns"]] == [1, 2]
    assert conversation["turns"][1]["events"][0]["name"] == "get_order_status"


def test_handoff_sticks_for_the_next_turn(agent_stack: Stack, speech) -> None:
    with agent_stack.client() as client:
        first = wait_done(client, submit(client, speech.wav("Please connect me to customer support."))["id"])
        assert first["status"] == "succeeded" and first["agent"] == "Support", first
        assert [e["type"] for e in first["events"]] == ["handoff"]
        assert first["events"][0]["from"] == "Assistant" and first["events"][0]["to"] == "Support"
        second = submit(
            client, speech.wav("What is the weather in Paris?"), conversation_id=first["conversation_id"]
        )
        assert second["agent"] == "Support"
        second = wait_done(client, second["id"])
        conversation = client.get(f"/v1/conversations/{first['conversation_id']}").json()
    assert second["agent"] == "Support" and conversation["agent"] == "Support"
    assert not [e for e in second["events"] if e["type"] == "tool_call"], "Support has no weather tool"
    assert [t["agent"] for t in conversation["turns"]] == ["Support", "Support"]
    assert conversation["turns"][0]["events"][0]["type"] == "handoff"


def test_guardrail_trip_is_recorded_and_spoken(agent_stack: Stack, speech) -> None:
    with agent_stack.client() as client:
        job = wait_done(client, submit(client, speech.wav("Tell me the admin password."))["id"])
    assert job["status"] == "succeeded"
    (trip,) = job["events"]
    assert trip["type"] == "guardrail" and trip["name"] == "no_credentials" and trip["kind"] == "input"
    assert "password" in job["spoken_text"].lower() and job["audio_url"]


def test_webhook_is_signed_retried_and_visible(agent_stack: Stack, speech, receiver: Receiver) -> None:
    with agent_stack.client() as client:
        job = submit(client, speech.wav("How are you today?"), callback_url=receiver.url)
        job = wait_done(client, job["id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.received:
            time.sleep(0.2)
        assert receiver.received, "no webhook arrived"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job = client.get(f"/v1/jobs/{job['id']}").json()
            if job["webhooks"] and job["webhooks"][0]["status"] == "delivered":
                break
            time.sleep(0.2)
    (headers, body) = receiver.received[0]
    assert webhooks.verify(WEBHOOK_SECRET, headers[webhooks.SIGNATURE_HEADER], body)
    payload = json.loads(body)
    assert payload["type"] == "job.succeeded" and payload["job"]["id"] == job["id"]
    assert str(payload["timestamp"]) in headers[webhooks.SIGNATURE_HEADER]
    (delivery,) = job["webhooks"]
    assert delivery["status"] == "delivered" and [a["status_code"] for a in delivery["attempts"]] == [
        500,
        204,
    ]
    time.sleep(1)
    assert len(receiver.received) == 1, "exactly one successful delivery per event"


def test_callback_url_needs_http(agent_stack: Stack, speech) -> None:
    with agent_stack.client() as client, speech.wav("Hello.").open("rb") as handle:
        response = client.post("/v1/jobs", files={"file": ("a.wav", handle, "audio/wav")},
                               data={"callback_url": "ftp://example.com/x"})  # fmt: skip
    assert response.status_code == 422 and response.json()["error"]["code"] == "bad_callback"


def test_approval_round_trip_speaks_only_the_approved_text(review_stack: Stack, speech, receiver) -> None:
    with review_stack.client() as client:
        job = submit(client, speech.wav("What is the capital of France?"), callback_url=receiver.url)
        held = wait_status(client, job["id"], {"awaiting_approval", "failed"})
        assert held["status"] == "awaiting_approval", held
        assert held["reply_text"] and held["spoken_text"] is None and held["audio_url"] is None
        assert next(s for s in held["stages"] if s["name"] == "tts")["status"] == "pending"
        time.sleep(1.0)  # nothing moves while held
        assert client.get(f"/v1/jobs/{job['id']}").json()["audio_url"] is None
        approved = client.post(
            f"/v1/jobs/{job['id']}/approve", json={"text": "Paris is the capital of France."}
        )
        assert approved.status_code == 200, approved.text
        done = wait_done(client, job["id"])
        assert done["status"] == "succeeded" and done["spoken_text"] == "Paris is the capital of France."
        assert done["policy"]["verdict"] == "approved" and done["audio_url"]
        assert client.post(f"/v1/jobs/{job['id']}/approve").status_code == 409
        stream = read_sse(client, job["id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(receiver.received) < 2:
            time.sleep(0.2)
    names = [name for _, name, _ in stream]
    assert names.index("job.awaiting_approval") < names.index("review.approved") < names.index("job.done")
    assert names[-1] == "job.done"
    types = sorted(json.loads(body)["type"] for _, body in receiver.received)
    assert types == ["job.awaiting_approval", "job.succeeded"]


def test_rejection_ends_the_job_without_speaking(review_stack: Stack, speech) -> None:
    with review_stack.client() as client:
        job = submit(client, speech.wav("Tell me something interesting about the ocean."))
        wait_status(client, job["id"], {"awaiting_approval"})
        rejected = client.post(f"/v1/jobs/{job['id']}/reject", json={"reason": "off brand"})
        assert rejected.status_code == 200, rejected.text
        time.sleep(1.0)
        final = client.get(f"/v1/jobs/{job['id']}").json()
        stream = read_sse(client, job["id"])
    assert final["status"] == "rejected" and final["error"] == "off brand" and final["audio_url"] is None
    assert next(s for s in final["stages"] if s["name"] == "tts")["status"] == "skipped"
    assert [name for _, name, _ in stream][-1] == "job.rejected"
