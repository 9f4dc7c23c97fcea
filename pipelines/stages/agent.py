"""The agent answers the transcript, remembering the conversation from the database.

The agent that holds the conversation answers; after a handoff the new agent is stored on the turn and
on the conversation (by the runner), so the next turn starts with it.
"""

from __future__ import annotations

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
    reply = ctx.responder.respond(agent, past, transcript)
    return StageResult(
        provider=ctx.chat.name,
        turn_fields={"reply_text": reply.text, "agent": reply.agent},
        output={"agent": reply.agent, "started_with": agent.name, "history_turns": len(past)},
        events=reply.events,
    )
