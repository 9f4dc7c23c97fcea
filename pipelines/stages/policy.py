"""The policy check between the agent and the voice: nothing is spoken that it did not let through.

Per agent (see `pipelines.agents.policies`): the rules engine, then the moderation provider if one is
configured, then review mode. Under review the turn stops in `awaiting_approval` with the proposed text
in `reply_text` and *no* `spoken_text`, so the tts stage refuses to run until a person approves
(`pipelines.stages.review`).
"""

from __future__ import annotations

from pipelines.policy.rules import PolicyDecision, apply_policy
from pipelines.stages.context import StageContext
from pipelines.stages.result import StageResult
from pipelines.storage.database import session_scope
from pipelines.storage.models import TurnStatus, utcnow
from pipelines.storage.turns import get_turn

PENDING_REVIEW = "pending_review"


def run(ctx: StageContext, turn_id: str) -> StageResult:
    with session_scope(ctx.database_url) as session:
        turn = get_turn(session, turn_id)
        reply, agent = turn.reply_text or "", turn.agent
    policy = ctx.policy_for(agent)
    decision = apply_policy(reply, policy.rules)
    provider = "rules"
    moderator = ctx.moderator if policy.moderation else None
    if moderator is not None and decision.verdict != "blocked":
        provider = f"rules+{moderator.name}"
        moderation = moderator.moderate(decision.text)
        if moderation.flagged:
            reasons = tuple(f"moderation: {c}" for c in moderation.categories) or ("moderation: flagged",)
            decision = PolicyDecision("blocked", policy.rules.safe_reply, reasons)
    if policy.review:
        return StageResult(
            provider=provider,
            turn_fields={
                "reply_text": decision.text,  # the proposal a reviewer sees (already through the rules)
                "spoken_text": None,
                "policy_verdict": PENDING_REVIEW,
                "policy_reasons": [*decision.reasons, f"review: rules said {decision.verdict}"],
            },
            output={"verdict": PENDING_REVIEW, "rules_verdict": decision.verdict},
            events=({"type": "awaiting_approval", "proposed": decision.text, "at": utcnow().isoformat()},),
            turn_status=TurnStatus.AWAITING_APPROVAL,
        )
    return StageResult(
        provider=provider,
        turn_fields={
            "spoken_text": decision.text,
            "policy_verdict": decision.verdict,
            "policy_reasons": list(decision.reasons),
        },
        output={"verdict": decision.verdict},
    )
