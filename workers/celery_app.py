"""The Celery app: one queue per stage, at-least-once delivery, ids-only messages.

Why these settings (see also shared FACTS): `task_acks_late` + `task_reject_on_worker_lost` mean a
worker killed mid-task gives its message back instead of losing it; prefetch 1 keeps a worker from
hoarding turns it is not running; on Redis the visibility timeout sits above the hard time limit so
Redis never redelivers a task that is still legitimately running.

Configuration is read when it is first needed, not at import: `app` exists at import (the task
decorators and `celery -A workers.celery_app` need it) but its broker comes from the settings in force
the first time anything publishes or consumes. `voicechain up` imports this module before it has started
the embedded Redis; an app configured at import sent the sweeper's re-sends to 127.0.0.1:6379, where no
worker listened. Processes handed explicit settings (the sweeper) call `configure(settings)`.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from kombu import Queue

from pipelines.settings import STAGES, WEBHOOK_QUEUE, Settings, get_settings
from workers.ready_gate import ReadyGate

#: The coordination Redis when `redis_url` is unset outside `voicechain up` (which starts its own).
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
#: Kept for the modules that import it: it has always meant "the Redis to use when none is configured".
DEFAULT_BROKER = DEFAULT_REDIS
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
#: The longest countdown a stage retry waits (`workers.tasks.backoff_s`); the sweeper allows for it.
STAGE_RETRY_BACKOFF_MAX_S = 30.0


#: Message priorities. A turn the sweeper sends again (its worker died, its message was lost) goes ahead
#: of the fresh backlog in every stage it has left, so its recovery does not wait behind every turn
#: posted since. The brokers count opposite ways: RabbitMQ delivers the higher number first from a queue
#: declared with `x-max-priority`; kombu's Redis emulation keeps one list per priority step and pops
#: the lowest step first (the bare list is step 0). Fresh stage messages and the audio API's calls
#: share one level; messages with no priority (webhooks) stay at the broker's default (RabbitMQ 0,
#: Redis step 0: they have queues of their own).
AMQP_MAX_PRIORITY = 3
REDIS_PRIORITY_STEPS = (0, 3)
#: kombu's default separator between a queue's name and its priority step (also used in its binding
#: keys, so it is left as it is: another one would misread the bindings an older Redis holds).
REDIS_PRIORITY_SEP = "\x06\x16"


def stage_priority(url: str, *, resend: bool = False) -> int:
    """The priority of a stage message on the broker at `url`: fresh turns, or re-sent ones."""
    if is_amqp(url):
        return AMQP_MAX_PRIORITY if resend else 0
    return REDIS_PRIORITY_STEPS[0] if resend else REDIS_PRIORITY_STEPS[-1]


def redis_lists(queue: str) -> list[str]:
    """The Redis lists that hold `queue`'s messages, one per priority step (LLEN of each, summed, is
    its depth; KEDA watches each)."""
    return [f"{queue}{REDIS_PRIORITY_SEP}{step}" if step else queue for step in REDIS_PRIORITY_STEPS]


def task_name(stage: str) -> str:
    return f"voicechain.stage.{stage}"


def redis_url(settings: Settings) -> str:
    """Redis for liveness keys, locks, the realtime registry and audio RPC (also the broker by default)."""
    return settings.redis_url or DEFAULT_REDIS


def broker_url(settings: Settings) -> str:
    """The message broker: `broker_url` (RabbitMQ, ...) if set, else the Redis above."""
    return settings.broker_url or redis_url(settings)


def is_amqp(url: str) -> bool:
    return url.startswith(AMQP_SCHEMES)


def _transport_options(settings: Settings, url: str) -> dict[str, Any]:
    if is_amqp(url):
        # RabbitMQ returns an unacked message the moment its consumer's connection drops; there is no
        # visibility timeout. Keep the server's consumer_timeout above task_time_limit_s (docs/scaling.md).
        return {"confirm_publish": True}
    return {
        "priority_steps": list(REDIS_PRIORITY_STEPS),
        "visibility_timeout": settings.visibility_timeout_s,
        # kombu scans for expired unacked messages every interval x throttle seconds: 10 x 10 = 100 s by
        # default, which is why a dead host's message came back ~88 s after a 20 s timeout. Scan every 5 s.
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        # a worker SIGKILLed mid-scan holds the scan mutex until this expires (kombu default 300 s)
        "unacked_mutex_expire": 60,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
    }


def queue_arguments(url: str) -> dict[str, Any]:
    """What a queue is declared with. RabbitMQ: `x-max-priority`, so re-sent turns go first; a queue
    an older VoiceChain declared without it refuses the declare (PRECONDITION_FAILED): drain and
    delete it once (docs/scaling.md)."""
    return {"x-max-priority": AMQP_MAX_PRIORITY} if is_amqp(url) else {}


def _queues(url: str) -> list[Queue]:
    """Durable queues on both brokers (kombu's default); classic on RabbitMQ, see docs/scaling.md."""
    return [
        Queue(name, routing_key=name, durable=True, queue_arguments=queue_arguments(url) or None)
        for name in (*STAGES, WEBHOOK_QUEUE)
    ]


def celery_config(settings: Settings) -> dict[str, Any]:
    """Everything the app needs from `settings`, in Celery's own names."""
    url = broker_url(settings)
    return {
        "broker_url": url,
        "broker_connection_retry_on_startup": True,
        # a cut RabbitMQ connection is noticed in ~2 heartbeats, not Celery's default 2 x 120 s
        "broker_heartbeat": 10 if is_amqp(url) else 0,
        "broker_transport_options": _transport_options(settings, url),
        "task_queues": _queues(url),
        # fresh turns at the normal priority; the sweeper's re-sends ask for a higher one (dispatch)
        "task_routes": {
            task_name(stage): {"queue": stage, "routing_key": stage, "priority": stage_priority(url)}
            for stage in STAGES
        }
        | {"voicechain.webhook.deliver": {"queue": WEBHOOK_QUEUE, "routing_key": WEBHOOK_QUEUE}}
        # the audio API's calls share the stage queues at the fresh turns' priority, on both brokers
        | {
            f"voicechain.audio.{name}": {"queue": q, "routing_key": q, "priority": stage_priority(url)}
            for name, q in (("transcribe", "stt"), ("speak", "tts"))
        },
        "task_default_queue": STAGES[0],
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # a new pool child loads its models (worker_process_init) before it reports up; on a busy machine
        # that takes longer than Celery's 4 s, and the main process then killed every replacement child
        # of a SIGKILLed one, forever (seen in tests/faults/test_up_kill.py)
        "worker_proc_alive_timeout": 120.0,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_track_started": True,
    }


def make_celery(settings: Settings) -> Celery:
    """A separate app for `settings` (tools and tests that talk to another broker than the process's)."""
    other = Celery("voicechain")
    other.conf.update(celery_config(settings))
    return other


app = Celery("voicechain")
# A promise: evaluated the first time a setting is read, i.e. when something publishes or a worker starts.
app.add_defaults(lambda: celery_config(get_settings()))
# Importing the task modules registers the stage tasks on `app` for `celery -A workers.celery_app worker`.
app.conf.imports = ("workers.tasks", "workers.audio_tasks", "workers.watchdog")
# No message is taken off a Redis queue before a pool process can run it (workers/ready_gate.py).
app.steps["consumer"].add(ReadyGate)
_configure_lock = threading.Lock()


def configure(settings: Settings) -> Celery:
    """Point this process's app at `settings`' broker, dropping connections to any other one.

    For processes that are handed settings explicitly (the sweeper under `voicechain up`): whatever
    touched the app before, what it publishes from now on goes where these settings say."""
    wanted = celery_config(settings)
    with _configure_lock:
        if (
            app.conf.broker_url == wanted["broker_url"]
            and app.conf.broker_transport_options == wanted["broker_transport_options"]
        ):
            return app
        app.conf.update(wanted)
        _forget_broker()
    return app


def _forget_broker() -> None:
    """Drop what the app built for the broker it had: its connection pool, and the `amqp` part with
    its producer pool, queues and routes (cached, and made for the old URL: `app.close()` alone keeps
    the producer pool, so a process that had published once went on publishing to the old broker; and
    the routes carry that broker's priorities)."""
    amqp = app.__dict__.pop("amqp", None)
    producers = getattr(amqp, "_producer_pool", None)
    if producers is not None:
        producers.force_close_all()
    if app._pool is not None:
        app._pool.force_close_all()
    app.close()


# Signal hooks shared by publishers and workers: the worker metrics port, and log ids / trace context
# carried in task headers. They read settings only inside their receivers.
from workers import metrics as _metrics  # noqa: E402, F401  (imported for its signal receivers)
from workers import observability as _observability  # noqa: E402, F401  (imported for its signal receivers)
