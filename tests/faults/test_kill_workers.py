"""Turns keep arriving while the worker running each stage is SIGKILLed mid-task, on Redis and on
RabbitMQ, with two workers serving every queue and the sweeper as its own process: every turn ends
exactly once (one reply, one spoken answer, one webhook), and the time from each kill to its turn's
completion is reported.

CI size: 16 turns and 6 kills per broker. The full size (100 turns, 30 kills, and the same under
`voicechain up`) is `python -m bench.faults`, which prints the table quoted in the README.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.brokers import BROKERS
from tests.faults.conftest import report
from tests.faults.harness import FaultStack
from tests.faults.kill_load import assert_exactly_once, run_kill_load

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(420)]

TURNS, KILLS = 16, 6


@pytest.fixture(params=BROKERS)
def broker_stack(request: pytest.FixtureRequest, tmp_path, sqlite_url: str) -> Iterator[FaultStack]:
    stack = FaultStack(tmp_path, sqlite_url, broker=request.param, pooled_workers=2).start()
    try:
        stack.wait_workers_ready()
        yield stack
    finally:
        stack.stop()


def test_turns_survive_sigkilled_stage_workers(broker_stack: FaultStack, question: bytes) -> None:
    result = run_kill_load(
        broker_stack,
        question,
        turns=TURNS,
        kills=KILLS,
        interval_s=1.0,
        gap_s=4.0,
        timeout_s=240,
        max_in_flight=3,
    )
    report(f"kill_workers_{broker_stack.broker}", **result.figures())
    assert_exactly_once(result)
    assert len(result.kills) >= KILLS - 1, f"not enough kills landed mid-task: {result.kills}"
    assert {k.kind for k in result.kills} == {"worker", "child"}
    assert result.audit["stage_attempts"] > TURNS * 4, "some stage should have run twice after a kill"
