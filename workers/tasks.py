"""The four stage tasks. Each carries only a turn id; the stage reads and writes the database.

Retry policy, stated where the tasks are defined: transient errors (provider timeouts, 429/5xx,
a database blip, the soft time limit) retry up to `stage_max_retries` times with exponential
backoff and jitter; anything else fails the turn at once with a readable error, and is not retried.
"""

from __future__ import annotations

import logging
import random
from functools import lru_cache
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_received, worker_process_init

from pipelines.settings import STAGES, get_settings
from pipelines.stages.context import StageContext
from pipelines.stages.runner import FailedStageError, Outcome, RetryableStageError, run_stage
from workers import liveness
from workers.celery_app import STAGE_RETRY_BACKOFF_MAX_S, app, redis_url, task_name
from workers.webhooks import notify

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def stage_context() -> StageContext:
    """One context per worker process: models load once and are reused by every task."""
    return StageContext(get_settings())


def backoff_s(retries: int) -> float:
    return random.uniform(0.5, min(STAGE_RETRY_BACKOFF_MAX_S, 2.0 ** (retries + 1)))


def _run(task: Task, stage: str, turn_id: str) -> str:
    """Run the stage while holding its liveness key, so the sweeper knows within seconds if we die."""
    settings = get_settings()
    keys = liveness.for_process(redis_url(settings), settings.worker_liveness_ttl_s)
    claimed, holder = keys.claim(turn_id, stage)
    keys.started(turn_id, stage)  # after the claim: one of the two keys always says somebody has it
    if not claimed:  # another copy of this message runs the stage right now; it continues the chain
        log.info("stage %s of %s already runs in %s; dropping this copy", stage, turn_id, holder)
        task.request.chain = None
        return "duplicate"
    try:
        return _run_claimed(task, stage, turn_id)
    finally:
        keys.release(turn_id, stage)


def _run_claimed(task: Task, stage: str, turn_id: str) -> str:
    last = task.request.retries >= task.max_retries
    try:
        outcome = run_stage(
            stage_context(),
            stage,
            turn_id,
            worker=task.request.hostname or "?",
            last_attempt=last,
            # an overrun under load is worth another attempt; only the last one fails the turn
            also_transient=(SoftTimeLimitExceeded,),
        )
    except RetryableStageError as exc:
        raise task.retry(exc=exc, countdown=backoff_s(task.request.retries)) from exc
    except FailedStageError:
        _notify(turn_id)
        raise
    if outcome is Outcome.STOP or stage == STAGES[-1]:
        _notify(turn_id)  # held for approval or final: tell the job's callback_url, once per event
    if outcome is Outcome.STOP:
        task.request.chain = None  # the turn is held, cancelled or final: publish no further stage
    log.info("stage %s of %s: %s", stage, turn_id, outcome.value)
    return outcome.value


def _notify(turn_id: str) -> None:
    try:
        notify(get_settings(), turn_id)
    except Exception:  # a webhook problem must never fail the stage; the job shows the delivery rows
        log.exception("webhook notify failed for %s", turn_id)


def _define(stage: str) -> Any:
    def stage_task(self: Task, turn_id: str) -> str:
        return _run(self, stage, turn_id)

    stage_task.__name__ = stage_task.__qualname__ = f"{stage}_task"
    stage_task.__doc__ = f"Run the {stage} stage of one turn."
    return app.task(
        bind=True,
        name=task_name(stage),
        queue=stage,
        max_retries=get_settings().stage_max_retries,
        throws=(FailedStageError,),  # expected outcome, logged without a traceback
    )(stage_task)


stt_task, agent_task, policy_task, tts_task = (_define(stage) for stage in STAGES)
_STAGE_OF_TASK = {task_name(stage): stage for stage in STAGES}


@task_received.connect
def _hold_received(request: Any = None, **_: Any) -> None:
    """In the worker's main process, as a stage message arrives: hold its key until a pool process
    starts it, so the sweeper can tell a message this worker dies holding from one still in line
    (workers/liveness.py). Never raises: the consumer must go on."""
    stage = _STAGE_OF_TASK.get(getattr(request, "name", ""))
    if stage is None:
        return
    try:
        args, kwargs = request.args or (), request.kwargs or {}
        turn_id = args[0] if args else kwargs.get("turn_id")
        if isinstance(turn_id, str):
            settings = get_settings()
            keys = liveness.for_process(redis_url(settings), settings.worker_liveness_ttl_s)
            keys.reserve(turn_id, stage)
    except Exception:
        log.exception("could not hold the key of a received %s message", stage)


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Load the models of the queues this worker consumes before its first task, not during it."""
    stages = tuple(q for q in get_settings().worker_queues if q in STAGES)
    try:
        stage_context().warm_up(stages)
    except Exception:  # a broken model must not kill the pool; the task will report the error
        log.exception("warm-up failed")
