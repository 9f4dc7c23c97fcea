"""A stage message that a worker's main process holds (received, not started) when the whole worker is
SIGKILLed: on Redis it stays unacknowledged until the visibility timeout and the database says only
`pending`. The held key (workers/liveness.py) lets the sweeper tell it from a message still in line.

Real Redis broker, real Celery worker on the `policy` queue (its stage loads no model). The message has a
countdown, so the main process keeps it without handing it to its pool, as it does while its pool
process is busy or still loading models. The slow stall rule is set to two minutes, so only the held-key
rule can re-send within the test.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from pipelines.settings import Settings, get_settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageStatus
from pipelines.storage.turns import get_turn
from tests.conftest import settings_env
from tests.pipelines.storage.test_turns import new_turn
from tests.services import Processes, RedisServer, free_port, worker_command
from workers import liveness
from workers.celery_app import app, configure, task_name
from workers.sweeper import quiet_after_s, sweep_once

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
TTL_S = 2.0


@contextmanager
def own_redis(tmp_path: Path, **fields: Any) -> Iterator[Settings]:
    """Settings on a Redis of the test's own (broker and liveness keys), this process publishing to it
    meanwhile and to the session's broker again afterwards."""
    server = RedisServer(port=free_port(), data_dir=tmp_path / "redis")
    server.start()
    settings = Settings(data_dir=tmp_path / "data", redis_url=server.url, **fields)
    configure(settings)
    try:
        yield settings
    finally:
        configure(get_settings())
        server.stop()


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Iterator[Settings]:
    with own_redis(tmp_path, database_url=sqlite_url, worker_liveness_ttl_s=TTL_S, stall_after_s=120) as s:
        yield s


def turn_at_policy(url: str) -> str:
    turn_id = new_turn(url)
    with session_scope(url) as session:
        for run in get_turn(session, turn_id).stages[:2]:  # stt and agent done: policy is next
            run.status = StageStatus.SUCCEEDED
    return turn_id


def wait_for(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def test_a_message_held_by_a_worker_killed_before_starting_it_is_resent_in_seconds(
    settings: Settings, tmp_path
) -> None:
    url = settings.resolved_database_url
    turn_id = turn_at_policy(url)
    app.send_task(task_name("policy"), args=[turn_id], queue="policy", routing_key="policy", countdown=600)
    env = settings_env(settings) | {
        "VOICECHAIN_WORKER_QUEUES": "policy",
        "VOICECHAIN_WORKER_LIVENESS_TTL_S": str(TTL_S),
    }
    processes = Processes(log_dir=tmp_path)
    worker = processes.start("worker-policy", worker_command("policy", "policy@held"), env)
    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        wait_for(lambda: liveness.is_held(client, turn_id, "policy"), 90, "the worker never held the message")
        time.sleep(quiet_after_s(settings) + 1)  # quiet long enough, but held by a live worker
        assert liveness.is_held(client, turn_id, "policy"), "the held key was not kept alive"
        assert turn_id not in sweep_once(settings, client)  # (other tests may leave turns in this database)
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker: main process and pool child
        wait_for(lambda: not liveness.is_held(client, turn_id, "policy"), TTL_S * 3, "the key did not expire")
        assert turn_id in sweep_once(settings, client)
    finally:
        processes.stop_all()
