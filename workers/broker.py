"""Questions about the broker that Celery does not answer: how many messages wait in a queue.

Redis keeps a queue as one list per priority step (`LLEN` of each, summed); RabbitMQ answers a
passive `queue.declare` with the queue's ready-message count. Both count messages waiting to be
delivered, not the ones a consumer holds unacknowledged, which is what the sweeper and the consumer
watchdog want to know.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from kombu import Connection
from kombu.exceptions import OperationalError

from workers.celery_app import is_amqp, redis_lists

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker could not be asked; callers judge nothing rather than guess."""


def queue_depths(broker_url: str, queues: Iterable[str], *, timeout_s: float = 5.0) -> dict[str, int]:
    """Messages waiting in each queue; a queue that does not exist yet counts 0."""
    names = list(queues)
    if is_amqp(broker_url):
        return _amqp_depths(broker_url, names, timeout_s)
    client = redis.Redis.from_url(broker_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    lists = {name: redis_lists(name) for name in names}  # one list per priority step
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                for key in lists[name]:
                    pipe.llen(key)
            counts = iter(pipe.execute())
    except redis.RedisError as exc:
        raise BrokerUnavailable(str(exc)) from exc
    finally:
        client.close()
    return {name: sum(int(next(counts)) for _ in lists[name]) for name in names}


def _amqp_depths(broker_url: str, names: list[str], timeout_s: float) -> dict[str, int]:
    depths: dict[str, int] = {}
    try:
        with Connection(broker_url, connect_timeout=timeout_s, heartbeat=0) as connection:
            # one try, bounded: /readyz and a scrape must answer within their own timeouts
            connection.ensure_connection(max_retries=0, interval_start=0, timeout=timeout_s)
            for name in names:
                channel = connection.channel()  # a passive declare of a missing queue closes its channel
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except connection.channel_errors:
                    depths[name] = 0
                finally:
                    _close_quietly(channel)
    except (OperationalError, *Connection(broker_url).connection_errors) as exc:
        raise BrokerUnavailable(str(exc)) from exc
    return depths


def amqp_queue_problems(
    broker_url: str, queues: Iterable[str], arguments: dict[str, object], *, timeout_s: float = 5.0
) -> dict[str, str]:
    """Queues RabbitMQ will not declare the way the workers declare them, with why (empty: all fine).

    A durable queue keeps the arguments it was first declared with; one declared by an older
    VoiceChain without `x-max-priority` makes every later declare fail (PRECONDITION_FAILED), so the
    workers cannot consume it and the API cannot publish to it. The declare here is the workers' own
    (durable, with `arguments`): it changes nothing on a queue that is right, and creates a missing one
    as the first worker would."""
    problems: dict[str, str] = {}
    try:
        with Connection(broker_url, connect_timeout=timeout_s, heartbeat=0) as connection:
            connection.ensure_connection(max_retries=0, interval_start=0, timeout=timeout_s)
            for name in queues:
                channel = connection.channel()  # a refused declare closes its channel
                try:
                    channel.queue_declare(queue=name, durable=True, auto_delete=False, arguments=arguments)
                except connection.channel_errors as exc:
                    problems[name] = f"declared otherwise ({type(exc).__name__}): {exc}"[:300]
                finally:
                    _close_quietly(channel)
    except (OperationalError, *Connection(broker_url).connection_errors) as exc:
        raise BrokerUnavailable(str(exc)) from exc
    return problems


def _close_quietly(channel: object) -> None:
    try:
        channel.close()  # type: ignore[attr-defined]
    except Exception:  # already closed by the server
        log.debug("channel already closed", exc_info=True)
