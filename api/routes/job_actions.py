"""Retry and cancel: operator actions on one job, scoped to its owner like every job route."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import PrincipalDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import JobDocument
from pipelines.storage.turn_actions import InvalidTransition, cancel_turn, retry_turn
from pipelines.storage.turns import get_turn
from workers.dispatch import publish, revoke_turn

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("/{job_id}/retry", status_code=202, response_model=JobDocument)
async def retry_job(
    job_id: str, settings: SettingsDep, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    """Run a failed job again from the stage that failed; earlier stages keep their results.
    409 if the job has not failed. Queued even while the broker is down (the sweeper sends it later)."""

    def reset() -> tuple[str, JobDocument]:
        turn = get_turn(session, job_id, owner=principal.owner)
        try:
            stage = retry_turn(turn)
        except InvalidTransition as exc:
            raise ApiError(409, str(exc), code="not_retryable") from exc
        session.commit()
        session.expire_all()
        # the job as this request left it (queued): once published, a fast worker may already be on it
        return stage, JobDocument.of(get_turn(session, job_id))

    stage, document = await run_in_threadpool(reset)
    await run_in_threadpool(publish, settings.resolved_database_url, job_id, stage)
    return JSONResponse(document.model_dump(mode="json"), status_code=202)


@router.post("/{job_id}/cancel", response_model=JobDocument)
def cancel_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobDocument:
    """Stop a job that has not ended: no further stage runs and nothing more is spoken. Its queued stage
    tasks are revoked and a stage running now is killed (its worker goes on with a fresh process); if
    the broker cannot be reached, the running stage finishes but its result is discarded. 409 if the
    job has already ended."""
    turn = get_turn(session, job_id, owner=principal.owner)
    try:
        cancel_turn(turn)
    except InvalidTransition as exc:
        raise ApiError(409, str(exc), code="not_cancellable") from exc
    session.commit()  # first: the cancel holds even if the revoke below never reaches a worker
    revoke_turn(job_id)
    session.expire_all()
    return JobDocument.of(get_turn(session, job_id))
