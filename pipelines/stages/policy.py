"""The policy check between the agent and the voice: nothing is spoken that it did not let through."""

from __future__ import annotations

from pipelines.policy.rules import apply_policy
from pipelines.stages.context import StageContext
from pipelines.stages.result import StageResult
from pipelines.storage.database import session_scope
from pipelines.storage.turns import get_turn


def run(ctx: StageContext, turn_id: str) -> StageResult:
    with session_scope(ctx.database_url) as session:
        reply = get_turn(session, turn_id).reply_text or ""
    decision = apply_policy(reply, ctx.policy)
    return StageResult(
        provider="rules",
        turn_fields={
            "spoken_text": decision.text,
            "policy_verdict": decision.verdict,
            "policy_reasons": list(decision.reasons),
        },
        output={"verdict": decision.verdict},
    )
