"""Publishing turns to the chain. The job row is the outbox: it is committed before anything is sent,
so a failed publish leaves a queued turn that the sweeper sends later, never a lost one."""

from __future__ import annotations

import logging

from celery import chain

from pipelines.settings import STAGES
from pipelines.storage.database import session_scope
from pipelines.storage.models import utcnow
from pipelines.storage.turns import get_turn, mark_enqueued
from workers.celery_app import app, stage_priority, task_name

log = logging.getLogger(__name__)


def stage_task_id(turn_id: str, stage: str) -> str:
    """The Celery task id of `stage` of `turn_id`, the same every time it is sent (a retry, a sweeper
    re-send): /cancel revokes a turn's tasks by these ids without having stored them anywhere."""
    return f"{turn_id}.{stage}"


def stage_chain(turn_id: str, from_stage: str = STAGES[0], *, resend: bool = False) -> chain:
    """The rest of the chain from `from_stage`: the same shape for a new turn, a retry or a resume.

    A re-send (`resend`: the sweeper found the turn's message lost) carries the higher priority in
    every stage it has left, so it goes ahead of the turns that queued meanwhile instead of behind
    them all; the priority of each step travels in the chain's own message, not in the route."""
    remaining = STAGES[STAGES.index(from_stage) :]
    options = {"priority": stage_priority(app.conf.broker_url, resend=True)} if resend else {}
    return chain(
        *(
            app.signature(
                task_name(s), args=(turn_id,), immutable=True, task_id=stage_task_id(turn_id, s), **options
            )
            for s in remaining
        )
    )


def revoke_turn(turn_id: str, *, timeout_s: float = 2.0) -> bool:
    """Tell every worker to drop the turn's queued stage tasks and to kill the one running now.

    Best effort, after the cancel is committed: the runner's status checks already keep a cancelled
    turn from going on; this frees the worker now instead of after the stage. Killing a task kills its
    pool process (Celery replaces it); if that process had already moved on to another turn's task,
    that message is not lost: unacked (acks_late) and rejected on worker loss, it is delivered again.
    Returns False (and logs) when the broker could not be reached in `timeout_s`."""
    ids = [stage_task_id(turn_id, stage) for stage in STAGES]
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout_s)
            app.control.revoke(ids, terminate=True, signal="SIGKILL", connection=connection)
    except Exception as exc:  # kombu raises several families; the cancel itself is already committed
        log.warning("could not revoke the tasks of %s: %s", turn_id, exc)
        return False
    return True


def publish(database_url: str, turn_id: str, from_stage: str = STAGES[0], *, resend: bool = False) -> bool:
    """Send the chain and record when; returns False (and logs) if the broker is unreachable."""
    sent_at = utcnow()  # before the send: a worker may start the stage before the line after it
    try:
        sent = stage_chain(turn_id, from_stage, resend=resend)
        sent.apply_async(retry=True, retry_policy={"max_retries": 2})
    except Exception as exc:  # kombu raises several families; the sweeper re-sends in every case
        log.warning("could not publish %s from %s: %s", turn_id, from_stage, exc)
        return False
    with session_scope(database_url) as session:
        mark_enqueued(session, get_turn(session, turn_id), sent_at)
    return True
