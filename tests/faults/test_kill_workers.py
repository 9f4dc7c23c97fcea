"""100 turns while the process running each stage is SIGKILLed mid-task, several times: every turn ends
exactly once (one reply, one spoken answer, one webhook)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipelines.settings import STAGES
from tests.faults.conftest import report
from tests.faults.harness import FaultStack, submit

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(420)]

TURNS = 100
KILLS_PER_STAGE = 3


def kill_mid_task(stack: FaultStack, stop: threading.Event, kills: dict[str, int]) -> None:
    """Round robin over the stages: wait until one of that stage's tasks is running, then SIGKILL."""
    while not stop.is_set() and min(kills.values()) < KILLS_PER_STAGE:
        for stage in STAGES:
            if kills[stage] >= KILLS_PER_STAGE:
                continue
            deadline = time.monotonic() + 10
            while not stop.is_set() and time.monotonic() < deadline:
                if stage in stack.running_stages():
                    if stack.kill_pool_child(stage):
                        kills[stage] += 1
                    break
                time.sleep(0.01)
            stop.wait(1.0)  # let the pool start a new child and load its models


def test_hundred_turns_survive_sigkilled_stage_workers(fault_stack: FaultStack, question: bytes) -> None:
    kills = dict.fromkeys(STAGES, 0)
    stop = threading.Event()
    killer = threading.Thread(target=kill_mid_task, args=(fault_stack, stop, kills), daemon=True)
    killer.start()
    started = time.monotonic()
    with fault_stack.client() as client, ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: submit(client, question, fault_stack.sink.url), range(TURNS)))
    assert [r.status_code for r in responses] == [202] * TURNS, [
        r.text for r in responses if r.status_code != 202
    ]
    ids = [r.json()["id"] for r in responses]
    statuses = fault_stack.wait_all_final(ids, timeout_s=300)
    stop.set()
    killer.join(15)
    deadline = time.monotonic() + 30  # webhooks go through their own queue: give the last ones a moment
    while time.monotonic() < deadline and len(fault_stack.audit(ids)["webhook_posts"]) < TURNS:
        time.sleep(0.5)
    audit = fault_stack.audit(ids)
    lost = TURNS - statuses["succeeded"]
    duplicates = sum(n - 1 for counts in ("audio_rows", "delivery_rows", "webhook_posts")
                     for n in audit[counts].values() if n > 1)  # fmt: skip
    report(
        "kill_workers", turns=TURNS, faults=sum(kills.values()), kills=kills, lost=lost,
        duplicates=duplicates, stage_attempts=audit["stage_attempts"],
        seconds=round(time.monotonic() - started, 1),
    )  # fmt: skip
    assert statuses["succeeded"] == TURNS, statuses
    assert min(kills.values()) >= 2, f"not enough kills landed mid-task: {kills}"
    assert audit["replies"] == TURNS
    assert set(audit["audio_rows"]) == set(ids) and set(audit["audio_rows"].values()) == {1}
    assert set(audit["delivery_rows"]) == set(ids) and set(audit["delivery_rows"].values()) == {1}
    assert set(audit["webhook_posts"]) == set(ids) and set(audit["webhook_posts"].values()) == {1}
    assert audit["stage_attempts"] > TURNS * len(STAGES), "some stage should have run twice after a kill"
