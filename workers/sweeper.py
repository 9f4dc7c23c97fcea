"""Finds turns whose chain message was lost and sends them again.

A chain's next step is published by the worker after a step succeeds, which is not atomic with the
database write; a Redis restart or flush also drops queued messages. The database knows which stage is
next, so the sweeper re-publishes from there. Re-sending is safe because stages are idempotent; the
checks below only avoid needless duplicates of messages that are probably still waiting in line.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import redis

from pipelines.settings import Settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageStatus, utcnow
from pipelines.storage.turns import first_unfinished_stage, stage_run, stalled_turns
from workers.dispatch import publish

log = logging.getLogger(__name__)
LOCK_KEY = "voicechain:sweeper:lock"


def looks_lost(
    settings: Settings,
    *,
    status: str,
    started_at: datetime | None,
    last_published: datetime,
    queue_depth: int,
    now: datetime,
) -> bool:
    """Whether the stage's message is probably gone, so that re-sending it is worth a duplicate.

    A running stage whose attempt began after the last publish is lost only once it has outlived
    the hard time limit (its worker died holding it). Once it has been re-sent, or while pending,
    it is lost only if nothing waits in its queue; otherwise the copy we sent is still in line,
    and sending another every sweep would only pile up duplicates behind it.
    """
    if status == StageStatus.RUNNING and started_at is not None and started_at >= last_published:
        return (now - started_at).total_seconds() > settings.task_time_limit_s + 30
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
            lost = looks_lost(
                settings,
                status=run.status,
                started_at=run.started_at,
                last_published=turn.enqueued_at or turn.created_at,
                queue_depth=int(broker.llen(stage)),  # type: ignore[arg-type]
                now=now,
            )
            if lost:
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
