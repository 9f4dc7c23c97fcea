"""The agent answers the transcript, remembering the conversation from the database."""

from __future__ import annotations

from pipelines.agents.responder import InstructionResponder
from pipelines.providers.base import GenerationOptions
from pipelines.stages.context import StageContext
from pipelines.stages.result import StageResult
from pipelines.storage.database import session_scope
from pipelines.storage.turns import get_turn, history


def run(ctx: StageContext, turn_id: str) -> StageResult:
    with session_scope(ctx.database_url) as session:
        turn = get_turn(session, turn_id)
        past = history(session, turn)
        transcript, agent_name = turn.transcript or "", turn.agent
    agent = ctx.agents.get(agent_name)
    options = GenerationOptions(
        max_tokens=ctx.settings.llm_max_tokens,
        temperature=ctx.settings.llm_temperature,
        seed=ctx.settings.llm_seed,
    )
    reply = InstructionResponder(ctx.chat, options).respond(agent, past, transcript)
    return StageResult(
        provider=ctx.chat.name,
        turn_fields={"reply_text": reply.text, "agent": reply.agent},
        output={"agent": reply.agent, "history_turns": len(past)},
        events=reply.events,
    )
