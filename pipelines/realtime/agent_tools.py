"""Server-side tools and handoffs in a realtime session, from the same agent definitions as the chain.

`AgentTools` is the `ToolRunner` (and `AgentRunner`) of one session. It holds the session's current agent
(an openai-agents `Agent` from the registry) and decides each response the way the chained path's
`RoutedLocalModel` does, because the tiny local model cannot choose tools:

- the last message is the output of one of the agent's own function tools: say that output (the tools
  return a whole spoken sentence);
- the last message is the output of a handoff: the new agent answers the same request, with its own
  tools only (no second handoff in the same turn), else the model replies with the new instructions;
- the user's words match a route of the current agent's tools or handoffs (`pipelines.agents.routing`):
  call it (the response runs it here as an `mcp_call` item with its output, and the session responds
  again), or ask for a missing argument;
- otherwise: None, and the model replies.

A function tool is run with `FunctionTool.on_invoke_tool`, as the SDK Runner runs it. A handoff switches
the current agent; the session then takes the new agent's instructions, persists the switch and sends
`session.updated` (see `pipelines.realtime.server_tools`).

The agent's input and output guardrails run through `guardrails` (`pipelines.realtime.guardrails`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from agents import Agent, FunctionTool, Handoff, RunContextWrapper
from agents.tool_context import ToolContext

from pipelines.agents.registry import AgentRegistry
from pipelines.agents.routing import RouteDecision, answer_to_question, route
from pipelines.agents.vocabulary import transcription_prompt
from pipelines.providers.base import ChatMessage, ToolCall
from pipelines.realtime.guardrails import AgentGuardrails
from pipelines.realtime.tools import Plan
from pipelines.text.sentences import trim_to_last_sentence

log = logging.getLogger(__name__)


def _handoffs(agent: Agent[Any]) -> dict[str, Agent[Any] | Handoff[Any, Any]]:
    """The agent's handoffs by tool name (`transfer_to_support`)."""
    found: dict[str, Agent[Any] | Handoff[Any, Any]] = {}
    for h in agent.handoffs:
        name = h.tool_name if isinstance(h, Handoff) else Handoff.default_tool_name(h)
        found[name] = h
    return found


def _function_tools(agent: Agent[Any]) -> dict[str, FunctionTool]:
    return {t.name: t for t in agent.tools if isinstance(t, FunctionTool)}


class AgentTools:
    """One session's agent: its tools and handoffs as server-side tools, and the routing decision."""

    def __init__(self, registry: AgentRegistry, agent: str | None = None, *, stt_prompt: bool = True) -> None:
        self.registry = registry
        self.agent: Agent[Any] = registry.get(agent)
        self._stt_prompt = stt_prompt
        self._issued: dict[str, bool] = {}  # call_id of each call this runner planned -> is a handoff
        self.guardrails = AgentGuardrails(lambda: self.agent)
        registry.router.warm()  # once per process: the router is shared by every session

    @property
    def agent_name(self) -> str:
        return self.agent.name

    @property
    def transcription_prompt(self) -> str | None:
        """Whisper's prompt for this session's next turn: the current agent's tool vocabulary, the same
        as the chained stt stage gives it (`pipelines.agents.vocabulary`); None when switched off."""
        return transcription_prompt(self.agent) if self._stt_prompt else None

    @property
    def instructions(self) -> str:
        value = self.agent.instructions
        return value if isinstance(value, str) else ""  # dynamic instructions need a run context

    # --- ToolRunner ------------------------------------------------------------------------------

    def definitions(self) -> Sequence[dict[str, Any]]:
        """Realtime function-tool schemas of the current agent's tools and handoffs."""
        defs = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.params_json_schema,
            }
            for t in _function_tools(self.agent).values()
        ]
        for name, h in _handoffs(self.agent).items():
            if isinstance(h, Handoff):
                description, parameters = h.tool_description, h.input_json_schema
            else:
                description, parameters = (
                    Handoff.default_tool_description(h),
                    {"type": "object", "properties": {}},
                )
            defs.append(
                {"type": "function", "name": name, "description": description, "parameters": parameters}
            )
        return defs

    async def run(self, name: str, arguments: str) -> str:
        """Run a function tool of the current agent, or perform a handoff; errors come back as text."""
        tool = _function_tools(self.agent).get(name)
        if tool is not None:
            ctx = ToolContext(context=None, tool_name=name, tool_call_id="", tool_arguments=arguments)
            try:
                return str(await tool.on_invoke_tool(ctx, arguments or "{}"))
            except Exception as exc:  # a tool failure is the model's (here: the caller's) to hear about
                log.exception("tool %s failed", name)
                return f"An error occurred while running the tool: {exc}"
        target = _handoffs(self.agent).get(name)
        if target is None:
            return f"Unknown tool {name!r}."
        if isinstance(target, Handoff):
            new_agent = await target.on_invoke_handoff(RunContextWrapper(context=None), arguments or "{}")
            message = target.get_transfer_message(new_agent)
        else:
            new_agent, message = target, json.dumps({"assistant": target.name})
        self.agent = self.registry.get(new_agent.name)
        return message

    # --- routing ---------------------------------------------------------------------------------

    def plan(self, messages: Sequence[ChatMessage]) -> Plan | None:
        if not messages:
            return None
        last = messages[-1]
        handed_off = False
        if last.role == "tool":
            is_handoff = self._issued.get(last.tool_call_id or "")
            if is_handoff is None:
                return None  # the output of a client tool: the model answers as before
            if not is_handoff:
                return Plan(say=trim_to_last_sentence(last.content) or last.content)
            handed_off = True  # a handoff brought us here this turn: the new agent answers the request
        user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        if not user.strip():
            return None
        own = set(_function_tools(self.agent))
        available = own | (set() if handed_off else set(_handoffs(self.agent)))
        routes = self.registry.router
        decision: RouteDecision | None = None
        if not handed_off:
            asked = _previous_assistant(messages)
            decision = answer_to_question(user, asked, routes, own) if asked else None
        decision = decision or route(user, routes, available)
        if decision is None:
            return None
        if decision.arguments is None:
            return Plan(say=decision.missing)
        call = ToolCall(
            id=f"call_{uuid.uuid4().hex[:24]}", name=decision.tool, arguments=json.dumps(decision.arguments)
        )
        self._issued[call.id] = call.name in _handoffs(self.agent)
        return Plan(calls=(call,))


def _previous_assistant(messages: Sequence[ChatMessage]) -> str:
    """The assistant's reply before the user's last message (a question a route asked, perhaps)."""
    seen_user = False
    for m in reversed(messages):
        if m.role == "user":
            seen_user = True
        elif seen_user and m.role == "assistant" and not m.content.startswith("[called "):
            return m.content
    return ""
