"""Finds turns whose chain message was lost and sends them again.

A chain's next step is published by the worker after a step succeeds, which is not atomic with the
database write; a Redis restart or flush also drops queued messages. The database knows which stage is
next, so the sweeper re-publishes from there. Re-sending is safe because stages are idempotent; the
checks below only avoid needless duplicates of messages that are probably still waiting in line.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import redis

from pipelines.settings import Settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageStatus, utcnow
from pipelines.storage.turns import first_unfinished_stage, stage_run, stalled_turns
from workers.dispatch import publish

log = logging.getLogger(__name__)
LOCK_KEY = "voicechain:sweeper:lock"


def _looks_lost(settings: Settings, run_status: str, started_age_s: float | None, queue_depth: int) -> bool:
    if run_status == StageStatus.RUNNING:
        # a running stage is killed at the hard time limit; past it plus a margin, its worker is gone
        return started_age_s is None or started_age_s > settings.task_time_limit_s + 30
    # pending: if its queue is empty, nothing is waiting in line for it, so the message is gone
    return queue_depth == 0


def sweep_once(settings: Settings, broker: redis.Redis) -> list[str]:
    """Re-publish stalled turns; returns their ids. Holds a Redis lock so replicas do not race."""
    if not broker.set(LOCK_KEY, "1", nx=True, ex=max(5, int(settings.sweep_interval_s))):
        return []
    resent: list[tuple[str, str]] = []
    now = utcnow()
    with session_scope(settings.resolved_database_url) as session:
        for turn in stalled_turns(session, older_than=timedelta(seconds=settings.stall_after_s)):
            stage = first_unfinished_stage(turn)
            if stage is None:
                continue
            run = stage_run(turn, stage)
            started_age = (now - run.started_at).total_seconds() if run.started_at else None
            depth = int(broker.llen(stage))  # type: ignore[arg-type]
            if _looks_lost(settings, run.status, started_age, depth):
                resent.append((turn.id, stage))
    for turn_id, stage in resent:
        log.warning("re-sending stalled turn %s from stage %s", turn_id, stage)
        publish(settings.resolved_database_url, turn_id, stage)
    return [turn_id for turn_id, _ in resent]


def run_forever(settings: Settings, stop: threading.Event) -> None:
    """The loop `voicechain up` and `voicechain sweeper` run; errors are logged, never fatal."""
    broker = redis.Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0")
    while not stop.wait(settings.sweep_interval_s):
        try:
            sweep_once(settings, broker)
        except Exception:
            log.exception("sweep failed; trying again in %.0f s", settings.sweep_interval_s)
