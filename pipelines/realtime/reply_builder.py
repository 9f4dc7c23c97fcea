"""How a session's replies are built: what the model reads, which tools it is offered, what the agent plans.

Every reply of a session (answering a turn, speculating on one, or after server tools) reads the same
window of history with the session's instructions, through the session's own LLM context, and stores its
outcome the same way. With an agent (`AgentRunner`), the agent's routes decide when its tools are called
(`Plan`) and the model is never offered them; its guardrails check what is said. Otherwise the model is
offered the client's tools and the server's. Calls to the server's tools run inside the response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pipelines.providers.base import ChatMessage
from pipelines.realtime.config import SessionConfig
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.engines import Engines, LlmSlot
from pipelines.realtime.gate import Emit, Gate
from pipelines.realtime.response import Outcome, Response
from pipelines.realtime.server_tools import ServerTools
from pipelines.realtime.tools import AgentRunner

log = logging.getLogger(__name__)


class ReplyBuilder:
    """Builds (does not start) a session's responses.

    `max_history_items`: the window of history a reply reads; `lead_ms`: how far its audio may run
    ahead of playback; `store(outcome)`: awaited before each `response.done` goes out."""

    def __init__(
        self,
        engines: Engines,
        conversation: Conversation,
        server: ServerTools,
        slot: LlmSlot,
        *,
        max_history_items: int,
        lead_ms: float,
        store: Callable[[Outcome], Awaitable[None]],
    ) -> None:
        self.engines, self.conversation, self.server, self.slot = engines, conversation, server, slot
        self.tools = server.tools
        self.max_history_items, self.lead_ms, self._store = max_history_items, lead_ms, store

    def history(self, config: SessionConfig) -> list[ChatMessage]:
        """The messages a reply answers: the instructions and the recent conversation."""
        return self.conversation.to_messages(config.instructions, self.max_history_items)

    def build(self, config: SessionConfig, messages: list[ChatMessage], gate: Gate) -> Response:
        agent = self.tools if isinstance(self.tools, AgentRunner) else None
        tools = [*config.tools] if agent else [*config.tools, *self.tools.definitions()]
        plan = agent.plan(messages) if agent and config.tool_choice != "none" else None
        return Response(
            engines=self.engines,
            config=config,
            conversation=self.conversation,
            messages=messages,
            tools=list(tools),
            gate=gate,
            lead_ms=self.lead_ms,
            plan=plan,
            guard=agent.guardrails if agent else None,
            persist=self._store,
            slot=self.slot,
            server_tools=self.server,
        )

    def speculative(self, config: SessionConfig, transcript: str, send: Emit) -> Response:
        """The reply to `transcript` (words not yet in the history), behind a closed gate."""
        messages = [*self.history(config), ChatMessage(role="user", content=transcript)]
        return self.build(config, messages, Gate(send, open_=False))

    def prefill(self, config: SessionConfig) -> Awaitable[None]:
        """Have the model read the conversation so far while the user speaks (a hint; see `prefill`).
        The messages are taken now; the returned work reads them in a thread."""
        return self._prefill(self.history(config))

    async def _prefill(self, messages: list[ChatMessage]) -> None:
        try:
            await asyncio.to_thread(self.engines.prefill, messages, self.slot)
        except Exception:  # only a head start lost; the reply evaluates the prompt anyway
            log.exception("prefill failed")
