"""Operator actions on a turn: retry a failed one from its failed stage, cancel one that has not ended.

Both are plain state changes committed before anything is published, like a new job: the turn row stays
the outbox, so a retry whose publish fails is still sent later by the sweeper.
"""

from __future__ import annotations

from pipelines.storage.models import StageStatus, Turn, TurnStatus, utcnow


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
    """Mark the turn cancelled; stages that have not started are skipped, and a stage still running
    keeps nothing of its result (the runner checks the turn's status before it commits)."""
    if turn.status in TurnStatus.FINAL:
        raise InvalidTransition(f"the job has already ended ({turn.status})")
    now = utcnow()
    turn.status, turn.finished_at = TurnStatus.CANCELLED, now
    for run in turn.stages:
        if run.status == StageStatus.PENDING:
            run.status = StageStatus.SKIPPED
