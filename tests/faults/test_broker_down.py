"""Redis down: the API still accepts jobs (the row is the outbox) and answers 503 where it needs the broker;
Redis flushed and restarted under load: every accepted turn still finishes, once."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.faults.conftest import report
from tests.faults.harness import FaultStack, submit

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(400)]


def test_outbox_accepts_while_redis_is_down_and_sends_when_it_is_back(
    fault_stack: FaultStack, question: bytes
) -> None:
    fault_stack.redis.stop()
    with fault_stack.client(timeout=20) as client:
        started = time.monotonic()
        accepted = submit(client, question, fault_stack.sink.url)
        assert accepted.status_code == 202, accepted.text
        assert time.monotonic() - started < 10, "a submit with the broker down must not hang"
        job = accepted.json()
        assert job["status"] == "queued"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["retry-after"]
        speech = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "alloy"})
        assert speech.status_code == 503, speech.text
        assert speech.headers["retry-after"] and speech.json()["error"]["code"] == "broker_unavailable"
        fault_stack.redis.start()
        statuses = fault_stack.wait_all_final([job["id"]], timeout_s=120)
        assert statuses["succeeded"] == 1, (statuses, client.get(f"/v1/jobs/{job['id']}").json())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not fault_stack.audit([job["id"]])["webhook_posts"]:
        time.sleep(0.5)
    assert fault_stack.audit([job["id"]])["webhook_posts"] == {job["id"]: 1}


def test_redis_flushed_and_restarted_mid_load(fault_stack: FaultStack, question: bytes) -> None:
    turns, accepted, refused = 40, [], []

    def submit_all() -> None:
        with fault_stack.client(timeout=20) as client:
            for _ in range(turns):
                try:
                    response = submit(client, question, fault_stack.sink.url)
                except httpx.HTTPError:
                    refused.append("transport")
                    continue
                (accepted if response.status_code == 202 else refused).append(response)
                time.sleep(0.1)

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    time.sleep(2.0)
    fault_stack.restart_redis(flush=True)  # the queues, reserved and unacked messages are all gone
    submitter.join(120)
    ids = [r.json()["id"] for r in accepted]
    statuses = fault_stack.wait_all_final(ids, timeout_s=240)
    audit = fault_stack.audit(ids)
    five_xx = sum(1 for r in refused if not isinstance(r, str) and r.status_code >= 500)
    duplicates = sum(n - 1 for n in audit["audio_rows"].values() if n > 1)
    lost = len(ids) - statuses["succeeded"]
    report("redis_restart", turns=len(ids), faults=1, refused=len(refused), lost=lost,
           duplicates=duplicates, five_xx=five_xx)  # fmt: skip
    assert len(ids) + len(refused) == turns and len(ids) >= turns // 2, refused
    assert statuses["succeeded"] == len(ids), statuses
    assert set(audit["audio_rows"].values()) == {1} and set(audit["delivery_rows"].values()) == {1}
