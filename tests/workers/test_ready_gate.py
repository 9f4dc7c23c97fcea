"""A worker whose pool process is still starting leaves messages in the Redis queue for a ready worker.

Real Redis broker, real Celery worker on the `policy` queue, whose pool process is held in its start-up
(tests/workers/slow_pool_app.py) as a model load holds it. Without the gate its main process took the
message off the queue at once and sat on it until the pool was up. Meanwhile the consumer watchdog
(workers/watchdog.py) must not take the waiting message for a stuck consumer and exit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from pipelines.settings import Settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageRun, StageStatus
from tests.conftest import settings_env
from tests.services import Processes
from tests.workers.test_sweeper_reserved import own_redis, turn_at_policy, wait_for
from workers.broker import queue_depths
from workers.celery_app import broker_url
from workers.dispatch import publish

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def settings(sqlite_url: str, tmp_path) -> Iterator[Settings]:
    with own_redis(tmp_path, database_url=sqlite_url) as s:
        yield s


def _policy_done(url: str, turn_id: str) -> bool:
    query = select(StageRun.status).where(StageRun.turn_id == turn_id, StageRun.stage == "policy")
    with session_scope(url) as session:
        return session.scalar(query) == StageStatus.SUCCEEDED


def test_a_worker_still_starting_its_pool_leaves_the_message_in_the_queue(
    settings: Settings, tmp_path
) -> None:
    url = settings.resolved_database_url
    release = tmp_path / "release-pool"
    env = settings_env(settings) | {
        "VOICECHAIN_WORKER_QUEUES": "policy",
        "VOICECHAIN_TEST_POOL_RELEASE": str(release),
        "VOICECHAIN_WORKER_STUCK_AFTER_S": "2",  # the watchdog looks every second
    }
    command = [sys.executable, "-m", "celery", "-A", "tests.workers.slow_pool_app", "worker", "-Q", "policy",
               "-c", "1", "-n", "policy@gate", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
               "--without-heartbeat"]  # fmt: skip
    processes = Processes(log_dir=tmp_path)
    worker = processes.start("worker-slow-pool", command, env)
    log = tmp_path / "worker-slow-pool.log"
    try:
        wait_for(lambda: b" ready." in log.read_bytes(), 90, "the worker never connected")
        turn_id = turn_at_policy(url)
        assert publish(url, turn_id, "policy")
        time.sleep(5)  # a worker that consumes while its pool starts has taken the message by now
        assert queue_depths(broker_url(settings), ["policy"]) == {"policy": 1}
        assert worker.poll() is None, "the watchdog took a pool still starting for a stuck consumer"
        release.touch()  # the models are loaded: the pool process reports up and the worker consumes
        wait_for(lambda: _policy_done(url, turn_id), 60, "the worker never ran the stage once ready")
    finally:
        processes.stop_all()
