"""A worker whose consumer silently stopped (as after some broker reconnects) is replaced by itself.

`cancel_consumer` reproduces the symptom faithfully: the process lives and answers nothing is wrong,
but it reads no more messages from its queue. Its watchdog sees messages waiting while it idles, exits,
and the supervisor starts a fresh worker that finishes the turn.
"""

from __future__ import annotations

import time

import pytest
from celery import Celery

from tests.faults.conftest import report
from tests.faults.harness import FaultStack, submit

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(300)]


def test_stuck_consumer_exits_and_its_replacement_finishes_the_turn(
    fault_stack: FaultStack, question
) -> None:
    control = Celery(broker=fault_stack.redis.url)
    deadline, replies = time.monotonic() + 90, []
    while not replies and time.monotonic() < deadline:  # the worker may still be starting up
        replies = control.control.cancel_consumer(
            "policy", destination=["policy@fault"], reply=True, timeout=3
        )
    assert replies, "the policy worker should acknowledge the cancel"
    stuck_pid = fault_stack.workers["policy"].pid
    with fault_stack.client() as client:
        response = submit(client, question, None)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
    statuses = fault_stack.wait_all_final([job_id], timeout_s=180)
    replaced = fault_stack.workers["policy"].pid != stuck_pid
    report("stuck_consumer", turns=1, faults=1, lost=1 - statuses["succeeded"], worker_replaced=replaced)
    assert statuses["succeeded"] == 1, statuses
    assert replaced, "the stuck policy worker should have exited and been restarted"
    control.close()
