"""Celery signal hooks that carry log ids and trace context from publisher to stage and on down the
chain: the publisher puts the bound ids and a `traceparent` in the task headers; the worker restores
them before the task runs, so the next step (published inside the task) carries them on again.

Every stage task's first argument is the job (turn) id, so it is bound even when the publisher had none.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)

from pipelines.observability import logs, tracing
from pipelines.settings import get_settings

log = logging.getLogger(__name__)
HEADER = "voicechain_ctx"
STAGE_PREFIX = "voicechain.stage."
_running: dict[str, tuple[Any, Any]] = {}


def _job_id(task_name: str | None, args: Any) -> str | None:
    if task_name and task_name.startswith(STAGE_PREFIX) and args:
        return str(args[0])
    return None


@before_task_publish.connect
def _inject(sender: str | None = None, headers: dict[str, Any] | None = None, body: Any = None, **_: Any):
    if headers is None:
        return
    ctx = logs.current()
    args = body[0] if isinstance(body, tuple | list) and body else None
    job_id = _job_id(sender, args)
    if job_id:
        ctx["job_id"] = job_id
    headers[HEADER] = ctx
    tracing.inject(headers)
    with logs.log_context(**ctx):
        log.info("published %s", sender, extra={"task": sender})


def _headers(task: Any) -> dict[str, Any]:
    request = task.request
    merged = dict(getattr(request, "headers", None) or {})
    for key in (HEADER, "traceparent", "tracestate"):
        value = getattr(request, key, None)
        if value is not None:
            merged[key] = value
    return merged


@task_prerun.connect
def _restore(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    if task is None or task_id is None:
        return
    headers = _headers(task)
    ctx = dict(headers.get(HEADER) or {})
    stage = task.name[len(STAGE_PREFIX) :] if task.name.startswith(STAGE_PREFIX) else None
    job_id = _job_id(task.name, args) or ctx.get("job_id")
    ctx.update({"job_id": job_id, "stage": stage, "task_id": task_id})
    token = logs.bind(**ctx)
    handle = tracing.start_span(
        f"stage {stage}" if stage else task.name,
        carrier={k: v for k, v in headers.items() if k in ("traceparent", "tracestate")},
        **{"voicechain.job_id": job_id, "voicechain.stage": stage, "celery.task_id": task_id},
    )
    _running[task_id] = (token, handle)


@task_postrun.connect
def _release(task_id: str | None = None, state: str | None = None, retval: Any = None, **_: Any) -> None:
    token, handle = _running.pop(task_id or "", (None, None))
    error = retval if isinstance(retval, BaseException) else None
    tracing.end_span(handle, error)
    if token is not None:
        logs.unbind(token)


if get_settings().log_format == "json":

    @setup_logging.connect
    def _json_logs(**_: Any) -> None:
        """Having a receiver stops Celery configuring logging; we install the JSON handler instead."""
        settings = get_settings()
        logs.configure_logging("json", settings.log_level, service="worker")


@worker_process_init.connect
def _tracing_after_fork(**_: Any) -> None:
    """Exporter threads do not survive fork: each pool child sets up its own."""
    tracing.configure_tracing("voicechain-worker", get_settings().otlp_endpoint)


@worker_process_shutdown.connect
def _flush_spans(**_: Any) -> None:
    tracing.shutdown()
