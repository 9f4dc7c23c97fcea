"""Publishing a turn: the time recorded as its publish is from before the message could be taken.

A worker may take a message and start its stage within milliseconds, before the publisher has written
anything back. Were `enqueued_at` written from a clock read after the send, the stage's `started_at`
would come before it, and the sweeper would take that run for the run of an older message: a worker
killed at that moment had its turn re-sent by the 15 s stall rule (20 s in `bench.faults`), not by its
expired liveness key within seconds.

Real Redis broker; the "worker" is a BRPOP on the stage's queue that marks the stage started the moment
the message arrives, as the fastest worker would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis

from pipelines.settings import Settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageStatus, utcnow
from pipelines.storage.turns import get_turn
from tests.pipelines.storage.test_turns import new_turn
from tests.workers.test_sweeper_reserved import own_redis
from workers.celery_app import redis_lists
from workers.dispatch import publish
from workers.sweeper import LIVENESS_GRACE_S, sweep_once

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Iterator[Settings]:
    with own_redis(tmp_path, database_url=sqlite_url, stall_after_s=120) as s:  # no stall rule in reach
        yield s


def take_when_published(settings: Settings, queue: str) -> tuple[threading.Thread, list[datetime]]:
    """A thread that pops the next message of `queue` and notes the time it arrived."""
    client = redis.Redis.from_url(settings.redis_url or "")
    keys = redis_lists(queue)  # one list per priority step
    arrived: list[datetime] = []

    def take() -> None:
        if client.brpop(keys, timeout=20):
            arrived.append(utcnow())

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    time.sleep(0.2)  # blocked in BRPOP before anything is sent
    return thread, arrived


def test_a_stage_started_as_its_message_arrives_counts_as_the_run_of_that_message(
    settings: Settings,
) -> None:
    url = settings.resolved_database_url
    turn_id = new_turn(url)
    thread, arrived = take_when_published(settings, "stt")
    assert publish(url, turn_id)
    thread.join(20)
    assert arrived, "the message never reached the stt queue"
    with session_scope(url) as session:
        turn = get_turn(session, turn_id)
        assert turn.enqueued_at is not None and turn.enqueued_at <= arrived[0]
        stt = turn.stages[0]
        stt.status, stt.started_at = StageStatus.RUNNING, arrived[0]  # what the worker's claim writes
    # The worker dies at once: no liveness key. Past the grace, its turn is lost now, not in 120 s.
    time.sleep(LIVENESS_GRACE_S + 0.5)
    client = redis.Redis.from_url(settings.redis_url or "")
    assert turn_id in sweep_once(settings, client)
