"""The human step of review mode, between the policy stage and the tts stage.

A turn held in `awaiting_approval` has its proposal in `reply_text` and no `spoken_text`. Approving sets
the text to speak (the proposal, or the reviewer's edit, which goes through the agent's rules again so an
edit cannot slip past a block pattern) and queues the turn for the tts stage; the caller then publishes
the chain from `tts`. Rejecting ends the turn in `rejected`, a final state of its own (not `failed`:
nothing broke, a person said no), with the reason in `error`; the tts stage is marked skipped.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from pipelines.policy.rules import PolicyConfig, apply_policy
from pipelines.storage.models import StageStatus, Turn, TurnStatus, utcnow
from pipelines.storage.turns import stage_run

APPROVED = "approved"


class NotAwaitingApproval(Exception):
    """The job is not (or no longer) waiting for a decision: approved, rejected, or never held."""

    def __init__(self, turn: Turn) -> None:
        super().__init__(f"job {turn.id} is {turn.status}, not awaiting_approval")


def approve(session: Session, turn: Turn, *, rules: PolicyConfig, reviewer: str, text: str | None) -> None:
    if turn.status != TurnStatus.AWAITING_APPROVAL:
        raise NotAwaitingApproval(turn)
    edited = text is not None and text.strip() != (turn.reply_text or "").strip()
    decision = apply_policy(text.strip() if edited and text else turn.reply_text or "", rules)
    turn.spoken_text = decision.text
    turn.policy_verdict = APPROVED if decision.verdict == "allowed" else f"{APPROVED}_{decision.verdict}"
    turn.policy_reasons = [*(turn.policy_reasons or []), *decision.reasons, f"approved by {reviewer}"]
    turn.events = [
        *(turn.events or []),
        {"type": "approved", "by": reviewer, "edited": edited, "at": utcnow().isoformat()},
    ]
    turn.status = TurnStatus.QUEUED
    session.flush()


def reject(session: Session, turn: Turn, *, reviewer: str, reason: str | None) -> None:
    if turn.status != TurnStatus.AWAITING_APPROVAL:
        raise NotAwaitingApproval(turn)
    now = utcnow()
    why = reason or "rejected by the reviewer"
    turn.status, turn.error, turn.finished_at = TurnStatus.REJECTED, why, now
    turn.policy_verdict = "rejected"
    turn.events = [
        *(turn.events or []),
        {"type": "rejected", "by": reviewer, "reason": why, "at": now.isoformat()},
    ]
    for name in ("tts",):
        run = stage_run(turn, name)
        if run.status == StageStatus.PENDING:
            run.status, run.finished_at = StageStatus.SKIPPED, now
    session.flush()
