"""A turn the sweeper sends again goes ahead of the backlog that queued meanwhile, on Redis and on RabbitMQ.

Real broker, real Celery worker: fresh turns are published first, the re-sent one last; then a worker
starts on the `policy` queue (its stage loads no model, so the test stays small) and runs them one at a
time. Without priorities the re-sent turn would run last; with them it runs first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from pipelines.settings import Settings, get_settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageRun, StageStatus
from tests.faults.brokers import RabbitVhost
from tests.pipelines.storage.test_turns import new_turn
from tests.services import Processes, RedisServer, free_port, worker_command
from workers.broker import queue_depths
from workers.celery_app import broker_url, configure
from workers.dispatch import publish

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
BACKLOG = 8


@pytest.fixture(params=["redis", "rabbitmq"])
def settings(request: pytest.FixtureRequest, sqlite_url: str, tmp_path) -> Iterator[Settings]:
    vhost = RabbitVhost().create() if request.param == "rabbitmq" else None
    redis = RedisServer(port=free_port(), data_dir=tmp_path / "redis")
    redis.start()
    settings = Settings(
        data_dir=tmp_path / "data", database_url=sqlite_url, redis_url=redis.url,
        broker_url=vhost.url if vhost else None,
    )  # fmt: skip
    configure(settings)  # this process publishes to the test's broker ...
    try:
        yield settings
    finally:
        configure(get_settings())  # ... and to the session's again afterwards
        redis.stop()
        if vhost:
            vhost.delete()


def start_policy_worker(settings: Settings, processes: Processes) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
        "VOICECHAIN_DATA_DIR": str(settings.data_dir),
        "VOICECHAIN_DATABASE_URL": settings.resolved_database_url,
        "VOICECHAIN_REDIS_URL": settings.redis_url or "",
        "VOICECHAIN_BROKER_URL": settings.broker_url or "",
        "VOICECHAIN_WORKER_QUEUES": "policy",
        "PYTHONUNBUFFERED": "1",
    }
    processes.start("worker-policy", worker_command("policy", "policy@priority"), env)


def policy_starts(settings: Settings, ids: list[str], timeout_s: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    query = select(StageRun.turn_id, StageRun.started_at).where(
        StageRun.turn_id.in_(ids), StageRun.stage == "policy", StageRun.status == StageStatus.SUCCEEDED
    )
    while time.monotonic() < deadline:
        with session_scope(settings.resolved_database_url) as session:
            started = dict(session.execute(query).all())
        if len(started) == len(ids):
            return started
        time.sleep(0.2)
    raise AssertionError(f"only {len(started)} of {len(ids)} turns ran their policy stage")


def test_a_resent_turn_overtakes_the_backlog(settings: Settings, tmp_path) -> None:
    url = settings.resolved_database_url
    fresh = [new_turn(url) for _ in range(BACKLOG)]
    resent = new_turn(url)
    for turn_id in fresh:
        assert publish(url, turn_id, "policy")
    assert publish(url, resent, "policy", resend=True)  # last in, as after a worker died mid-stage
    assert queue_depths(broker_url(settings), ["policy"]) == {"policy": BACKLOG + 1}
    processes = Processes(log_dir=tmp_path)
    start_policy_worker(settings, processes)
    try:
        started = policy_starts(settings, [*fresh, resent])
    finally:
        processes.stop_all()
    order = sorted(started, key=lambda turn_id: started[turn_id])
    assert order[0] == resent, f"the re-sent turn ran {order.index(resent) + 1}th of {len(order)}"
    assert order[1:] == fresh, "the fresh turns keep their order among themselves"
