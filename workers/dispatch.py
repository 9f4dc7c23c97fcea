"""Publishing turns to the chain. The job row is the outbox: it is committed before anything is sent,
so a failed publish leaves a queued turn that the sweeper sends later, never a lost one."""

from __future__ import annotations

import logging

from celery import chain

from pipelines.settings import STAGES
from pipelines.storage.database import session_scope
from pipelines.storage.turns import get_turn, mark_enqueued
from workers.celery_app import app, task_name

log = logging.getLogger(__name__)


def stage_chain(turn_id: str, from_stage: str = STAGES[0]) -> chain:
    """The rest of the chain from `from_stage`: the same shape for a new turn, a retry or a resume."""
    remaining = STAGES[STAGES.index(from_stage) :]
    return chain(*(app.signature(task_name(s), args=(turn_id,), immutable=True) for s in remaining))


def publish(database_url: str, turn_id: str, from_stage: str = STAGES[0]) -> bool:
    """Send the chain and record when; returns False (and logs) if the broker is unreachable."""
    try:
        stage_chain(turn_id, from_stage).apply_async(retry=True, retry_policy={"max_retries": 2})
    except Exception as exc:  # kombu raises several families; the sweeper re-sends in every case
        log.warning("could not publish %s from %s: %s", turn_id, from_stage, exc)
        return False
    with session_scope(database_url) as session:
        mark_enqueued(session, get_turn(session, turn_id))
    return True
