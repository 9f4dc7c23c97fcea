"""`/readyz` and `voicechain_queue_depth{queue}` ask the broker in force: RabbitMQ when
`VOICECHAIN_BROKER_URL=amqp://...` (a passive queue.declare), the Redis lists otherwise. Real brokers
(a private RabbitMQ vhost, the tests' own Redis), messages published and left waiting, no worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kombu import Connection
from kombu import Queue as KombuQueue

from api.main import create_app
from pipelines.settings import Settings
from tests.faults.brokers import RabbitVhost
from tests.services import RedisServer, free_port
from workers.celery_app import make_celery, task_name

pytestmark = pytest.mark.integration


@contextmanager
def broker_settings(broker: str, sqlite_url: str, tmp_path: Path) -> Iterator[Settings]:
    """A Redis of the test's own (empty stage lists; the session's Redis serves the shared stack), and
    under `rabbitmq` a private vhost as the broker."""
    vhost = RabbitVhost().create() if broker == "rabbitmq" else None
    redis = RedisServer(port=free_port(), data_dir=tmp_path / "redis")
    redis.start()
    try:
        yield Settings(
            data_dir=tmp_path, database_url=sqlite_url, redis_url=redis.url,
            broker_url=vhost.url if vhost else None, metrics_enabled=True,
        )  # fmt: skip
    finally:
        redis.stop()
        if vhost:
            vhost.delete()


@pytest.fixture(params=["redis", "rabbitmq"])
def settings(request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path) -> Iterator[Settings]:
    with broker_settings(request.param, sqlite_url, tmp_path) as settings:
        yield settings


def scrape(settings: Settings) -> str:
    with TestClient(create_app(settings)) as client:
        return client.get("/metrics").text


def test_queue_depths_and_readiness_come_from_the_broker_in_force(settings: Settings) -> None:
    celery = make_celery(settings)
    for stage, count in (("stt", 3), ("tts", 1)):
        for i in range(count):
            celery.send_task(task_name(stage), args=(f"turn-{stage}-{i}",))
    celery.close()
    text = scrape(settings)
    assert "voicechain_broker_up 1.0" in text
    assert 'voicechain_queue_depth{queue="stt"} 3.0' in text, text
    assert 'voicechain_queue_depth{queue="tts"} 1.0' in text
    assert 'voicechain_queue_depth{queue="agent"} 0.0' in text
    with TestClient(create_app(settings)) as client:
        checks = client.get("/readyz").json()["checks"]
    assert checks["broker"] == "ok", checks
    assert checks.get("redis", "ok") == "ok"


def test_a_broker_that_does_not_answer_is_not_ready(settings: Settings) -> None:
    """Under RabbitMQ the coordination Redis still answers: readiness must not take it for the broker."""
    dead = free_port()
    if settings.broker_url:
        down = settings.model_copy(update={"broker_url": f"amqp://guest:guest@127.0.0.1:{dead}//"})
    else:
        down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{dead}/0"})
    with TestClient(create_app(down)) as client:
        ready = client.get("/readyz")
        text = client.get("/metrics").text
    assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("error"), ready.json()
    if down.broker_url:
        assert ready.json()["checks"]["redis"] == "ok"
    assert "voicechain_broker_up 0.0" in text and "voicechain_queue_depth{" not in text


def test_rabbitmq_queues_of_an_older_release_are_reported(sqlite_url: str, tmp_path: Path) -> None:
    """A durable queue keeps its first declaration: one without `x-max-priority` refuses the workers'."""
    with broker_settings("rabbitmq", sqlite_url, tmp_path) as settings:
        assert settings.broker_url
        with Connection(settings.broker_url) as connection:
            KombuQueue("tts", routing_key="tts", durable=True)(connection.channel()).declare()
        with TestClient(create_app(settings)) as client:
            ready = client.get("/readyz")
    assert ready.status_code == 503, ready.json()
    broker = ready.json()["checks"]["broker"]
    assert "queue tts exists with other arguments" in broker and "x-max-priority" in broker, broker
