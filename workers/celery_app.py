"""The Celery app: one queue per stage, at-least-once delivery, ids-only messages.

Why these settings (see also shared FACTS): `task_acks_late` + `task_reject_on_worker_lost` mean a
worker killed mid-task gives its message back instead of losing it; prefetch 1 keeps a worker from
hoarding turns it is not running; the visibility timeout sits above the hard time limit so Redis never
redelivers a task that is still legitimately running.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from pipelines.settings import STAGES, WEBHOOK_QUEUE, Settings, get_settings

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def task_name(stage: str) -> str:
    return f"voicechain.stage.{stage}"


def make_celery(settings: Settings) -> Celery:
    app = Celery("voicechain")
    app.conf.update(
        broker_url=settings.redis_url or DEFAULT_BROKER,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            "retry_on_timeout": True,
        },
        task_queues=[Queue(name, routing_key=name) for name in (*STAGES, WEBHOOK_QUEUE)],
        task_routes={task_name(stage): {"queue": stage, "routing_key": stage} for stage in STAGES}
        | {"voicechain.webhook.deliver": {"queue": WEBHOOK_QUEUE, "routing_key": WEBHOOK_QUEUE}},
        task_default_queue=STAGES[0],
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_track_started=True,
        # A pool process loads its models in worker_process_init (workers/tasks.py: _warm_up) before it
        # reports up; Celery's default 4 s wait killed every replacement of a killed process (a /cancel
        # of a running stage, a crash) on a busy machine, over and over, and the worker never served again.
        worker_proc_alive_timeout=120.0,
    )
    return app


app = make_celery(get_settings())
# Importing the task modules registers the stage tasks on `app` for `celery -A workers.celery_app worker`.
app.conf.imports = ("workers.tasks", "workers.audio_tasks", "workers.watchdog")
# Signal hooks shared by publishers and workers: the worker metrics port, and log ids / trace context
# carried in task headers. Imported last because they read the settings this module has just used.
from workers import metrics as _metrics  # noqa: E402, F401  (imported for its signal receivers)
from workers import observability as _observability  # noqa: E402, F401  (imported for its signal receivers)
