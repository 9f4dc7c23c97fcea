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
