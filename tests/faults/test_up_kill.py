"""`voicechain up` as a user runs it (embedded Redis, SQLite, no VOICECHAIN_REDIS_URL, on a "machine" where
nothing listens on 127.0.0.1:6379): turns arrive while its Celery workers are SIGKILLed mid-stage, and
every turn still finishes exactly once, through the sweeper that `up` runs.

The bug this reproduces: the Celery app was configured when `up` imported the sweeper, before the embedded
Redis existed, so the sweeper re-sent lost turns to 127.0.0.1:6379 and they stayed queued.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.conftest import report
from tests.faults.kill_load import assert_exactly_once, run_kill_load
from tests.faults.up_stack import UpStack

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(480)]


@pytest.fixture
def up_stack(tmp_path) -> Iterator[UpStack]:
    stack = UpStack(tmp_path, workers=2)
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_turns_survive_sigkilled_workers_under_voicechain_up(up_stack: UpStack, question: bytes) -> None:
    result = run_kill_load(
        up_stack, question, turns=10, kills=4, interval_s=1.0, gap_s=5.0, timeout_s=240, max_in_flight=3
    )
    report("kill_workers_up", **result.figures())
    log = up_stack.log()
    assert_exactly_once(result)
    assert len(result.kills) >= 3, result.kills
    assert "re-sending turn" in log, "the sweeper under `up` should have re-sent a killed worker's turn"
    assert "sweep failed" not in log, log[-3000:]
