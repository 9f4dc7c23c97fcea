"""Replace a worker whose consumer silently stopped after a broker reconnect.

Celery on Redis can come back from a broker restart with an idle consumer that never reads again: no
error is logged and messages pile up (celery#9054, #8082, #10205; seen here in the Redis-restart fault
test). A worker cannot repair its own event loop, so it watches for the symptom (its queues hold
messages and it has received nothing for `worker_stuck_after_s`, plus the hard time limit if it looks
busy) and exits. A worker whose pool process is still loading its models receives nothing on purpose
(workers/ready_gate.py) and is not judged meanwhile.
Its supervisor (`voicechain up`, Kubernetes, compose restart policies) starts a fresh one. Exiting is
safe: with late acks an idle worker holds no unacknowledged message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from celery.signals import task_received, worker_ready, worker_shutdown
from celery.worker import state

from pipelines.settings import get_settings
from workers.broker import BrokerUnavailable, queue_depths
from workers.celery_app import broker_url
from workers.ready_gate import pool_has_a_ready_process

log = logging.getLogger(__name__)


class ConsumerWatchdog:
    def __init__(
        self, stuck_after_s: float, *, busy_grace_s: float = 0.0, clock: Any = time.monotonic
    ) -> None:
        self.stuck_after_s = stuck_after_s
        self.busy_grace_s = busy_grace_s
        self.clock = clock
        self.last_received = clock()

    def received(self) -> None:
        self.last_received = self.clock()

    def is_stuck(self, waiting: int, busy: bool) -> bool:
        """Messages wait and nothing arrived for a while: the consumer is dead.

        A worker that looks busy gets `busy_grace_s` more (the hard time limit): a real task ends by
        then, while a blocked main loop never clears its finished task from the bookkeeping.
        """
        threshold = self.stuck_after_s + (self.busy_grace_s if busy else 0.0)
        return waiting > 0 and self.clock() - self.last_received > threshold


def exit_now() -> None:
    """Kill the pool children, then this process, without the main thread: it may be the one blocked.
    With late acks nothing is lost: unacknowledged messages come back, finished stages are skipped."""
    from billiard.process import active_children

    for child in active_children():
        if child.pid:
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGKILL)
    os._exit(70)


_watchdog: ConsumerWatchdog | None = None
_stop = threading.Event()


def _watch(
    watchdog: ConsumerWatchdog, queues: list[str], url: str, interval_s: float, ready: Callable[[], bool]
) -> None:
    while not _stop.wait(interval_s):
        if not ready():  # the pool is (re)loading its models: the ready gate holds consumption back
            watchdog.received()
            continue
        try:
            waiting = sum(queue_depths(url, queues).values())  # LLEN on Redis, passive declare on AMQP
        except BrokerUnavailable:
            continue  # the broker is down: nothing to judge, the consumer's own retry handles it
        busy = bool(state.active_requests) or bool(state.reserved_requests)
        if watchdog.is_stuck(waiting, busy):
            log.error(
                "consumer stuck: %d messages wait in %s but nothing was received for %.0f s; exiting so "
                "the supervisor starts a fresh worker", waiting, ",".join(queues), watchdog.stuck_after_s,
            )  # fmt: skip
            exit_now()


def consumed_queues(consumer: Any) -> list[str]:
    """The queues this worker really consumes (`-Q`), not the setting: judging by another worker's
    queue would make an idle stt worker think itself stuck while the agent queue is busy."""
    try:
        return sorted(consumer.app.amqp.queues.consume_from)
    except AttributeError:
        return list(get_settings().worker_queues)


@worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    global _watchdog
    settings = get_settings()
    if settings.worker_stuck_after_s <= 0:
        return
    _watchdog = ConsumerWatchdog(settings.worker_stuck_after_s, busy_grace_s=settings.task_time_limit_s + 30)
    interval = max(1.0, settings.worker_stuck_after_s / 6)
    queues = consumed_queues(sender)
    log.info("consumer watchdog on %s (stuck after %.0f s)", ",".join(queues), settings.worker_stuck_after_s)
    pool = getattr(sender, "pool", None)
    args = (_watchdog, queues, broker_url(settings), interval, lambda: pool_has_a_ready_process(pool))
    threading.Thread(target=_watch, args=args, name="consumer-watchdog", daemon=True).start()


@task_received.connect
def _received(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.received()


@worker_shutdown.connect
def _shutdown(**_: Any) -> None:
    _stop.set()
