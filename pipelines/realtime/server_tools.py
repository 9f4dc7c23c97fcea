"""The server-tool loop of a session: calls to tools that run here are answered here, then the model goes on.

A response that called one of the session's own tools (`ToolRunner`, e.g. the agent's) ends with the
call items; the client has no such tool and must not answer them. This part runs each call, adds its
`function_call_output` item to the conversation (`conversation.item.added` / `.done`), records it, tells
the session when a handoff switched the agent, and asks for the next response, which speaks the result.
Calls to tools the client declared are left for the client to answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pipelines.realtime.conversation import Conversation
from pipelines.realtime.persistence import Record, record_of
from pipelines.realtime.protocol import event, new_id
from pipelines.realtime.response import Outcome
from pipelines.realtime.tools import AgentRunner, ToolRunner, server_tool_names

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Handoff = Callable[[AgentRunner], Awaitable[None]]


class ServerTools:
    """Runs a session's server-side calls.

    `handoff(runner)` adopts the runner's new agent (instructions, `session.updated`); `respond()` starts
    the response that follows the outputs, unless one is already running."""

    def __init__(
        self,
        tools: ToolRunner,
        conversation: Conversation,
        *,
        send: Emit,
        persist: Callable[[Record], None],
        handoff: Handoff,
        respond: Callable[[], None],
    ) -> None:
        self.tools, self.conversation = tools, conversation
        self._send, self._persist, self._handoff, self._respond = send, persist, handoff, respond

    def owned(self, outcome: Outcome) -> list[dict[str, Any]]:
        """The calls of a completed response that run here (none for a cancelled or failed one)."""
        if outcome.status != "completed":
            return []
        names = server_tool_names(self.tools)
        return [c for c in outcome.calls if c["name"] in names]

    async def run(self, calls: Sequence[dict[str, Any]]) -> None:
        """Answer `calls` in order, then respond again (as the new agent after a handoff)."""
        before = self.tools.agent_name if isinstance(self.tools, AgentRunner) else None
        for call in calls:
            output = await self.tools.run(call["name"], call["arguments"])
            item = {
                "id": new_id("item"),
                "object": "realtime.item",
                "type": "function_call_output",
                "status": "completed",
                "call_id": call["call_id"],
                "output": output,
            }
            previous = self.conversation.add(item)
            await self._send(event("conversation.item.added", previous_item_id=previous, item=item))
            await self._send(event("conversation.item.done", previous_item_id=previous, item=item))
            record = record_of(item)
            if record is not None:
                self._persist(record)
        if isinstance(self.tools, AgentRunner) and self.tools.agent_name != before:
            new = self.tools.agent_name
            self._persist(Record("agent", new_id("item"), new, {"from": before, "to": new}))
            await self._handoff(self.tools)
        self._respond()
