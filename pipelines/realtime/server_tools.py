"""The tools a session runs itself (its agent's), and the response that follows a call to one.

Clients see a call to a tool that runs here as an `mcp_call` item (`server_label` "voicechain"), the GA
protocol's item for tools the server executes: the response runs it between `response.mcp_call.in_progress`
and `.completed`, and the item carries its output. A `function_call` item would tell the client to run
the tool and answer with a `function_call_output`, which the OpenAI Agents SDKs do (and, having no such
tool, answer "Tool get_weather not found" and report an error). Tools the client declared stay
`function_call` items for the client to answer.

After a response that ran tools here, the session responds again on its own, so that the outputs are
spoken: clients that know nothing of server tools (the `openai` client, the Python Agents SDK) need no
extra step. Clients that follow OpenAI's MCP flow ask for that response themselves (the JS SDK sends
`response.create` once an `mcp_call` is done); `claim` takes that request as one for the follow-up, so
it is neither refused as a second active response nor answered twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pipelines.realtime.persistence import Record
from pipelines.realtime.protocol import new_id
from pipelines.realtime.response import Outcome
from pipelines.realtime.tools import AgentRunner, ToolRunner, server_tool_names

Handoff = Callable[[AgentRunner], Awaitable[None]]


class ServerTools:
    """A session's own tools, as the `ToolRunner` its responses run them with.

    `handoff(runner)` adopts the runner's new agent (instructions, `session.updated`); `respond()` starts
    the response that follows the outputs, unless one is already running."""

    def __init__(
        self,
        tools: ToolRunner,
        *,
        persist: Callable[[Record], None],
        handoff: Handoff,
        respond: Callable[[], None],
    ) -> None:
        self.tools = tools
        self._persist, self._handoff, self._respond = persist, handoff, respond
        self._agent = self._agent_name()
        #: a response ran tools here and the response that follows it has not been asked for yet
        self.follow_up_due = False

    def definitions(self) -> Sequence[dict[str, Any]]:
        return self.tools.definitions()

    def names(self) -> frozenset[str]:
        """The tools that run here now (a handoff changes them)."""
        return server_tool_names(self.tools)

    async def run(self, name: str, arguments: str) -> str:
        """Run one call (from inside a response); the session will respond again after it."""
        self.follow_up_due = True
        return await self.tools.run(name, arguments)

    def ran(self, outcome: Outcome) -> list[dict[str, Any]]:
        """The calls a completed response ran here (none for a cancelled or failed one)."""
        if outcome.status != "completed":
            return []
        return [c for c in outcome.calls if c.get("type") == "mcp_call"]

    async def follow_up(self) -> None:
        """After a response that ran tools here: note a handoff, then respond (as the new agent)."""
        agent = self._agent_name()
        if agent is not None and agent != self._agent:
            self._persist(Record("agent", new_id("item"), agent, {"from": self._agent, "to": agent}))
            self._agent = agent
            assert isinstance(self.tools, AgentRunner)
            await self._handoff(self.tools)
        self._respond()

    def claim(self) -> bool:
        """A bare `response.create` from the client: True if it asks for the follow-up the session
        starts itself (then it is that response), False if it asks for a response of its own."""
        due, self.follow_up_due = self.follow_up_due, False
        return due

    def settle(self) -> None:
        """A response that ran no tool here ended: nothing is left to follow up."""
        self.follow_up_due = False

    def _agent_name(self) -> str | None:
        return self.tools.agent_name if isinstance(self.tools, AgentRunner) else None
