"""Review mode: a held job is approved (optionally with edited text) and spoken, or rejected."""

from __future__ import annotations

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import AgentsDep, PrincipalDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import JobDocument
from pipelines.agents.policies import effective_policy
from pipelines.stages.review import NotAwaitingApproval, approve, reject
from pipelines.storage.turns import get_turn
from workers.dispatch import publish
from workers.webhooks import notify

router = APIRouter(prefix="/v1/jobs", tags=["review"])


class ApproveRequest(BaseModel):
    text: str | None = Field(None, max_length=4000, description="Speak this instead of the proposal.")


class RejectRequest(BaseModel):
    reason: str | None = Field(None, max_length=1000)


@router.post("/{job_id}/approve", response_model=JobDocument)
async def approve_job(
    job_id: str,
    settings: SettingsDep,
    session: SessionDep,
    principal: PrincipalDep,
    agents: AgentsDep,
    request: ApproveRequest | None = Body(None),
) -> JobDocument:
    """Approve the proposed reply (or an edited one, checked by the agent's rules again); it is then
    spoken by the tts stage. 409 unless the job is awaiting approval."""
    turn = get_turn(session, job_id, owner=principal.owner)
    policy = effective_policy(
        turn.agent,
        agents.policies,
        block_patterns=settings.policy_block_patterns,
        safe_reply=settings.policy_safe_reply,
        review_agents=settings.review_agents,
    )
    try:
        approve(session, turn, rules=policy.rules, reviewer=principal.owner, text=request and request.text)
    except NotAwaitingApproval as exc:
        raise ApiError(409, str(exc), code="not_awaiting_approval") from exc
    session.commit()
    await run_in_threadpool(publish, settings.resolved_database_url, job_id, "tts")
    session.expire_all()
    return JobDocument.of(get_turn(session, job_id))


@router.post("/{job_id}/reject", response_model=JobDocument)
async def reject_job(
    job_id: str,
    settings: SettingsDep,
    session: SessionDep,
    principal: PrincipalDep,
    request: RejectRequest | None = Body(None),
) -> JobDocument:
    """Refuse the proposed reply: the job ends in `rejected` with the reason; nothing is spoken."""
    turn = get_turn(session, job_id, owner=principal.owner)
    try:
        reject(session, turn, reviewer=principal.owner, reason=request and request.reason)
    except NotAwaitingApproval as exc:
        raise ApiError(409, str(exc), code="not_awaiting_approval") from exc
    session.commit()
    await run_in_threadpool(notify, settings, job_id)
    session.expire_all()
    return JobDocument.of(get_turn(session, job_id))
