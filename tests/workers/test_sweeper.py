"""The sweeper's judgement of a stalled stage: re-send what is lost, not what is still in line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines.settings import Settings
from pipelines.storage.models import StageStatus, utcnow
from workers.sweeper import looks_lost

SETTINGS = Settings(task_time_limit_s=60)
NOW = utcnow()


def ago(seconds: float):
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("status", "started", "published", "depth", "alive", "stalled", "lost"),
    [
        # pending: lost only once stalled with nothing waiting in the stage's queue (a lost message)
        (StageStatus.PENDING, None, ago(120), 0, None, True, True),
        (StageStatus.PENDING, None, ago(120), 5, None, True, False),
        (StageStatus.PENDING, None, ago(5), 0, None, False, False),
        # running the last message sent: its liveness key decides, within seconds
        (StageStatus.RUNNING, ago(30), ago(40), 3, True, True, False),
        (StageStatus.RUNNING, ago(5), ago(6), 3, False, False, True),
        (StageStatus.RUNNING, ago(0.5), ago(1), 0, False, False, False),  # within the grace
        # liveness unknown (Redis unreachable): only past the hard time limit
        (StageStatus.RUNNING, ago(30), ago(40), 0, None, True, False),
        (StageStatus.RUNNING, ago(200), ago(210), 3, None, True, True),
        # running but already re-sent since it started: the copy is in line while the queue is busy
        (StageStatus.RUNNING, ago(300), ago(100), 3, False, True, False),
        (StageStatus.RUNNING, ago(300), ago(100), 0, False, True, True),
        (StageStatus.RUNNING, ago(300), ago(5), 0, False, False, False),
        # a live key wins over every other rule: the stage is running, however long it takes
        (StageStatus.RUNNING, ago(300), ago(100), 0, True, True, False),
    ],
)
def test_looks_lost(status, started, published, depth, alive, stalled, lost) -> None:
    assert looks_lost(SETTINGS, status=status, started_at=started, last_published=published,
                      queue_depth=depth, alive=alive, stalled=stalled, now=NOW) is lost  # fmt: skip


@pytest.mark.parametrize(
    ("held", "alive", "depth", "quiet", "lost"),
    [
        # a pending stage nobody holds or runs, nothing in line, quiet past the TTL: a worker died with it
        (False, False, 0, 9.0, True),
        (False, False, 0, 3.0, False),  # not quiet long enough: a live holder may not have refreshed yet
        (True, False, 0, 9.0, False),  # a live worker's main process holds it (busy, or loading models)
        (False, True, 0, 9.0, False),  # a pool process has just claimed it
        (False, False, 2, 9.0, False),  # something waits in its queue: probably our copy
        (None, None, 0, 9.0, False),  # Redis unreachable: the slow stall rule only
    ],
)
def test_a_pending_stage_nobody_holds_is_lost_after_the_ttl(held, alive, depth, quiet, lost) -> None:
    settings = Settings(worker_liveness_ttl_s=6.0, stall_after_s=60)
    assert looks_lost(settings, status=StageStatus.PENDING, started_at=None, last_published=ago(quiet),
                      queue_depth=depth, alive=alive, stalled=False, now=NOW, held=held,
                      quiet_s=quiet) is lost  # fmt: skip
