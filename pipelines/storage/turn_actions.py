"""Operator actions on a turn: retry a failed one from its failed stage, cancel one that has not ended.

Both are plain state changes committed before anything is published, like a new job: the turn row stays
the outbox, so a retry whose publish fails is still sent later by the sweeper.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import object_session

from pipelines.storage.models import StageRun, StageStatus, Turn, TurnStatus, utcnow


class InvalidTransition(ValueError):
    """The turn is not in a state the action applies to (the API answers 409)."""


def retry_turn(turn: Turn) -> str:
    """Reset the failed stage (and any after it) to pending and requeue the turn; returns that stage."""
    if turn.status != TurnStatus.FAILED:
        raise InvalidTransition(f"only a failed job can be retried; this one is {turn.status}")
    failed = next((r for r in turn.stages if r.status == StageStatus.FAILED), None)
    failed = failed or next(
        (r for r in turn.stages if r.status not in (StageStatus.SUCCEEDED, StageStatus.SKIPPED)), None
    )
    if failed is None:
        raise InvalidTransition("the job has no stage left to retry")
    for run in turn.stages:
        if run.position >= failed.position:
            run.status, run.error, run.attempts = StageStatus.PENDING, None, 0
            run.started_at = run.finished_at = run.duration_ms = None
    turn.status, turn.error, turn.finished_at = TurnStatus.QUEUED, None, None
    turn.enqueued_at = None
    return failed.stage


def cancel_turn(turn: Turn) -> None:
    """Mark the turn cancelled; stages that have not started are skipped, and a stage still running is
    marked cancelled and keeps nothing of its result (the runner checks the turn's status before it
    commits, and its worker is usually killed by the revoke that follows, so it writes nothing more).

    The turn's row is written first and the stage rows by guarded UPDATEs after it, the order every
    writer in the runner keeps (turn, then stage), so a stage that a worker starts at this moment
    either sees the turn closed and never runs, or has committed `running` and is cancelled here;
    a read-modify-write of the rows read earlier would leave it `running` forever."""
    if turn.status in TurnStatus.FINAL:
        raise InvalidTransition(f"the job has already ended ({turn.status})")
    session = object_session(turn)
    now = utcnow()
    turn.status, turn.finished_at = TurnStatus.CANCELLED, now
    if session is None:  # a detached turn (no database in sight): settle what it holds
        for run in turn.stages:
            run.status = _CANCEL_MOVES.get(run.status, run.status)
        return
    session.flush()  # the turn's row first: takes its lock on PostgreSQL
    for before, after in _CANCEL_MOVES.items():
        values: dict[str, object] = {"status": after}
        if after == StageStatus.CANCELLED:
            values["finished_at"] = now
        session.execute(
            update(StageRun)
            .where(StageRun.turn_id == turn.id, StageRun.status == before)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    for run in turn.stages:  # their rows changed under the loaded objects
        session.expire(run)


#: What a cancel does to each stage that has not ended.
_CANCEL_MOVES = {StageStatus.RUNNING: StageStatus.CANCELLED, StageStatus.PENDING: StageStatus.SKIPPED}
