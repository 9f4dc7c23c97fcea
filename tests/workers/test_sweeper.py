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
    ("status", "started", "published", "depth", "lost"),
    [
        # pending: lost only when nothing waits in the stage's queue (a flushed or lost message)
        (StageStatus.PENDING, None, ago(120), 0, True),
        (StageStatus.PENDING, None, ago(120), 5, False),
        # running since the last publish: lost only past the hard time limit (its worker died)
        (StageStatus.RUNNING, ago(30), ago(40), 0, False),
        (StageStatus.RUNNING, ago(200), ago(210), 3, True),
        # running but already re-sent since it started: the copy is in line while the queue is busy
        (StageStatus.RUNNING, ago(300), ago(100), 3, False),
        (StageStatus.RUNNING, ago(300), ago(100), 0, True),
    ],
)
def test_looks_lost(status, started, published, depth, lost) -> None:
    assert looks_lost(SETTINGS, status=status, started_at=started, last_published=published,
                      queue_depth=depth, now=NOW) is lost  # fmt: skip
