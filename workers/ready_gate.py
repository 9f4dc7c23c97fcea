"""A worker takes no message off a Redis queue while none of its pool processes can run one.

A restarted worker (or one whose pool process was just replaced) connects to the broker within a
second, but its pool process first loads its models (`worker_process_init`): seconds on a loaded
machine. Celery's main process meanwhile reserves a message and holds it until the pool is up, while
another worker, ready and idle, could have run it at once: under `voicechain up` that wait was most of
a killed turn's recovery time. The gate keeps the message in the queue until a pool process has
reported up, so whoever is ready takes it.

kombu's Redis transport asks its channel's `QoS.can_consume()` before every BRPOP (Celery's own
`worker_disable_prefetch` hooks in the same way). On RabbitMQ the broker pushes up to the prefetch count
on its own and gives an unacked message back the moment a consumer's connection drops, so the gate is
not installed there.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

from celery import bootsteps


def pool_has_a_ready_process(pool: Any) -> bool:
    """True when the prefork pool has a process that reported up (or the pool is not a prefork one)."""
    inner = getattr(pool, "_pool", None)
    ready = getattr(inner, "_all_inqueues", None)  # billiard's AsynPool: queues of processes that are up
    return ready is None or len(ready) > 0


class ReadyGate(bootsteps.StartStopStep):
    """Consumer bootstep, after the task consumer exists (and again after every reconnection)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        if c.connection.transport.driver_type != "redis" or c.task_consumer is None:
            return
        qos = c.task_consumer.channel.qos
        original = qos.can_consume

        def can_consume(self: Any) -> bool:
            return pool_has_a_ready_process(c.pool) and bool(original())

        qos.can_consume = MethodType(can_consume, qos)
