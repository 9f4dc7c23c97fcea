"""Runs one stage of one turn with the bookkeeping that makes the chain safe to redeliver.

The queue delivers at least once, so the runner, not the stage, decides whether work is needed:
a stage that already succeeded is skipped, a turn that was cancelled or held stops the chain, and a
stage's outputs are committed in the same transaction that marks it succeeded.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pipelines.observability import logs
from pipelines.observability.metrics import JOBS_FINISHED, STAGE_ERRORS, STAGE_SECONDS
from pipelines.providers.base import ProviderError
from pipelines.stages import agent, policy, stt, tts
from pipelines.stages.context import StageContext
from pipelines.stages.result import StageError, StageResult
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageRun, StageStatus, Turn, TurnStatus, utcnow
from pipelines.storage.turns import add_artifact, elapsed_ms, get_turn, stage_run

STAGE_FUNCTIONS: dict[str, Callable[[StageContext, str], StageResult]] = {
    "stt": stt.run,
    "agent": agent.run,
    "policy": policy.run,
    "tts": tts.run,
}


class Outcome(enum.Enum):
    RAN = "ran"
    SKIPPED = "skipped"  # already done by an earlier delivery: continue the chain
    STOP = "stop"  # the turn is final, cancelled or held: do not continue the chain


class RetryableStageError(Exception):
    """Raised after recording a transient failure; the queue should try the stage again."""


class FailedStageError(Exception):
    """Raised after recording a permanent failure; the turn has been marked failed."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, StageError | ProviderError):
        return exc.transient
    return isinstance(exc, OperationalError | TimeoutError | ConnectionError)


#: A turn in one of these states takes no more stage results: its status is never written over.
CLOSED = (*TurnStatus.FINAL, TurnStatus.AWAITING_APPROVAL)


def _update_open_turn(session: Session, turn_id: str, **values: object) -> bool:
    """Write `values` to the turn only while it is still open, and say whether that happened.

    A guarded UPDATE, not read-modify-write: PostgreSQL re-checks the WHERE on the newest row version
    (waiting for a concurrent writer), SQLite serialises writers, so a cancel committed at any moment
    after this stage read the turn is seen here and never undone."""
    result = session.execute(
        update(Turn)
        .where(Turn.id == turn_id, Turn.status.not_in(CLOSED))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _begin(ctx: StageContext, stage: str, turn_id: str, worker: str) -> Outcome | None:
    with session_scope(ctx.database_url) as session:
        turn = get_turn(session, turn_id)
        logs.bind(job_id=turn_id, conversation_id=turn.conversation_id)  # the task hook resets the context
        if turn.status in CLOSED:
            return Outcome.STOP
        run = stage_run(turn, stage)
        if run.status in (StageStatus.SUCCEEDED, StageStatus.SKIPPED):
            return Outcome.SKIPPED
        if run.status == StageStatus.RUNNING and run.attempts >= ctx.settings.stage_max_crashes:
            _give_up_crashed(session, turn_id, run, stage)
            return Outcome.STOP
        # The turn's row before the stage's, as every writer keeps it (a cancel too): closed since it
        # was read, the stage is not started at all instead of being left `running` by nobody.
        if not _update_open_turn(session, turn_id, status=TurnStatus.RUNNING):
            return Outcome.STOP
        run.status, run.worker, run.error = StageStatus.RUNNING, worker, None
        run.attempts += 1
        run.started_at = utcnow()
        return None


def _give_up_crashed(session: Session, turn_id: str, run: StageRun, stage: str) -> None:
    """Fail a stage found `running` at its own start after as many attempts as the crash cap allows.

    A stage that raises is recorded as failed or pending; one still `running` when it is begun again was
    left by a worker that died under it (a segfault in a model library, the OOM killer). Celery and the
    sweeper hand such a turn back forever, and a turn that crashes whatever runs it would take every
    worker down in turn; after `stage_max_crashes` attempts it fails with a reason instead."""
    message = (
        f"the worker running this stage died {run.attempts} times (a crash in a model library or the "
        "OOM killer: see the worker logs); not sent again"
    )
    _write_failure(session, turn_id, run, stage, message, final=True)
    STAGE_ERRORS.labels(stage, "crashed").inc()


def _finish(ctx: StageContext, stage: str, turn_id: str, result: StageResult) -> Outcome:
    with session_scope(ctx.database_url) as session:
        turn = get_turn(session, turn_id)
        run = stage_run(turn, stage)
        if run.status == StageStatus.SUCCEEDED:  # a concurrent duplicate finished first: keep its output
            return Outcome.SKIPPED
        # The guarded status write comes first, before anything of the result is written: if the turn
        # was cancelled (or otherwise closed) since it was read, nothing of this stage is kept.
        if turn.status in TurnStatus.FINAL or not _settle_turn(session, turn_id, result.turn_status):
            return Outcome.STOP
        for name, value in result.turn_fields.items():
            setattr(turn, name, value)
        if "agent" in result.turn_fields:  # a handoff moves the conversation to the new agent for good
            turn.conversation.agent = result.turn_fields["agent"]
        for record in result.artifacts:
            add_artifact(session, turn, **vars(record))
        if result.events:
            turn.events = [*turn.events, *result.events]
        now = utcnow()
        run.status, run.provider, run.output = StageStatus.SUCCEEDED, result.provider, result.output
        run.finished_at, run.duration_ms = now, elapsed_ms(run.started_at, now)
        return Outcome.RAN if result.turn_status in (None, TurnStatus.SUCCEEDED) else Outcome.STOP


def _settle_turn(session: Session, turn_id: str, status: str | None) -> bool:
    """Move the open turn to `status` (None: it stays running); False if it was closed meanwhile."""
    values: dict[str, object] = {"status": status or TurnStatus.RUNNING}
    if status in TurnStatus.FINAL:
        values["finished_at"] = utcnow()
    if not _update_open_turn(session, turn_id, **values):
        return False
    if status is not None:
        JOBS_FINISHED.labels(status).inc()
    return True


def _record_failure(ctx: StageContext, stage: str, turn_id: str, exc: BaseException, *, final: bool) -> None:
    message = f"{type(exc).__name__}: {exc}"[:2000]
    with session_scope(ctx.database_url) as session:
        run = stage_run(get_turn(session, turn_id), stage)
        _write_failure(session, turn_id, run, stage, message, final=final)


def _write_failure(
    session: Session, turn_id: str, run: StageRun, stage: str, message: str, *, final: bool
) -> None:
    """The turn failed (if `final`, and only while open), then the stage's row failed or back to
    pending, only while it still runs: a cancel committed meanwhile has ended both and stays."""
    now = utcnow()
    failed = {"status": TurnStatus.FAILED, "error": f"{stage}: {message}", "finished_at": now}
    if final and _update_open_turn(session, turn_id, **failed):  # a cancelled turn stays cancelled
        JOBS_FINISHED.labels(TurnStatus.FAILED).inc()
    session.execute(
        update(StageRun)
        .where(StageRun.id == run.id, StageRun.status == StageStatus.RUNNING)
        .values(
            status=StageStatus.FAILED if final else StageStatus.PENDING,
            error=message,
            finished_at=now,
            duration_ms=elapsed_ms(run.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )


def run_stage(
    ctx: StageContext,
    stage: str,
    turn_id: str,
    *,
    worker: str = "local",
    last_attempt: bool = True,
    also_transient: tuple[type[BaseException], ...] = (),
) -> Outcome:
    """Run `stage` for `turn_id` once. Raises RetryableStageError or FailedStageError on failure.

    `also_transient` lets the caller add its own retryable errors (the queue's soft time limit)
    without this module knowing the queue."""
    early = _begin(ctx, stage, turn_id, worker)
    if early is not None:
        return early
    started = time.perf_counter()
    try:
        result = STAGE_FUNCTIONS[stage](ctx, turn_id)
    except Exception as exc:
        final = last_attempt or not (is_transient(exc) or isinstance(exc, also_transient))
        _record_failure(ctx, stage, turn_id, exc, final=final)
        STAGE_ERRORS.labels(stage, "failed" if final else "retry").inc()
        STAGE_SECONDS.labels(stage, "unknown", "error").observe(time.perf_counter() - started)
        raise (FailedStageError if final else RetryableStageError)(str(exc)) from exc
    outcome = _finish(ctx, stage, turn_id, result)
    STAGE_SECONDS.labels(stage, result.provider or "none", "ok").observe(time.perf_counter() - started)
    return outcome


def run_turn_inline(ctx: StageContext, turn_id: str) -> dict[str, float]:
    """All stages in this process, in order: the baseline the chain's overhead is measured against."""
    timings: dict[str, float] = {}
    for stage in STAGE_FUNCTIONS:
        started = time.perf_counter()
        if run_stage(ctx, stage, turn_id) is Outcome.STOP:
            break
        timings[stage] = time.perf_counter() - started
    return timings
