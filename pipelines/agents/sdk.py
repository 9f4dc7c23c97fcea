"""The `Responder` that runs an agent with the OpenAI Agents SDK's Runner: tools, handoffs, guardrails.

Everything the run did is returned as plain JSON events for the turn record:
`tool_call` (name, arguments, result, duration), `handoff` (from, to) and `guardrail` (kind, name).
A tripped guardrail is an answer, not an error: the turn speaks the guardrail's message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from agents import (
    Agent,
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
    RunConfig,
    RunHooks,
    Runner,
)
from agents.items import HandoffOutputItem, ToolCallItem, ToolCallOutputItem
from agents.models.interface import ModelProvider

from pipelines.agents.responder import NOT_HEARD_REPLY, AgentReply
from pipelines.storage.models import utcnow
from pipelines.storage.turns import HistoryEntry
from pipelines.text.sentences import trim_to_last_sentence

GUARDRAIL_REPLY = "Sorry, I can't help with that request."
MAX_TURNS = 6  # model calls per run: route, tool result, handoff, route again, answer, spare


class _Timings(RunHooks[Any]):
    """Measures each tool invocation, keyed by its call id."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.duration_ms: dict[str, float] = {}

    @staticmethod
    def _call_id(context: Any) -> str:
        return str(getattr(context, "tool_call_id", ""))

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        self.started[self._call_id(context)] = time.perf_counter()

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: object) -> None:
        call_id = self._call_id(context)
        if call_id in self.started:
            self.duration_ms[call_id] = round((time.perf_counter() - self.started[call_id]) * 1000, 2)


def _arguments(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return text


def guardrail_message(output_info: Any) -> str:
    """A guardrail may put the words to say in `output_info` (a string, or a dict with "message")."""
    if isinstance(output_info, str) and output_info.strip():
        return output_info
    if isinstance(output_info, dict) and isinstance(output_info.get("message"), str):
        return output_info["message"]
    return GUARDRAIL_REPLY


def history_items(history: list[HistoryEntry], user_text: str) -> list[Any]:
    items: list[Any] = []
    for entry in history:
        items += [{"role": "user", "content": entry.user}, {"role": "assistant", "content": entry.assistant}]
    items.append({"role": "user", "content": user_text})
    return items


@dataclass
class SdkResponder:
    provider: ModelProvider
    tracing: bool = False
    max_turns: int = MAX_TURNS
    #: Overrides every agent's own `model`: the deployment, not the definition, decides which model runs.
    model: str | None = None
    _config: RunConfig = field(init=False)

    def __post_init__(self) -> None:
        self._config = RunConfig(
            model_provider=self.provider, model=self.model, tracing_disabled=not self.tracing
        )

    def respond(self, agent: Agent[Any], history: list[HistoryEntry], user_text: str) -> AgentReply:
        if not user_text.strip():
            return AgentReply(NOT_HEARD_REPLY, agent.name)
        timings = _Timings()
        try:
            result = Runner.run_sync(
                agent,
                history_items(history, user_text),
                run_config=self._config,
                hooks=timings,
                max_turns=self.max_turns,
            )
        except InputGuardrailTripwireTriggered as exc:
            tripped = exc.guardrail_result
            event = self._guardrail_event("input", tripped.guardrail.get_name(), agent.name)
            message = guardrail_message(tripped.output.output_info)
            return AgentReply(message, agent.name, (event,))
        except OutputGuardrailTripwireTriggered as exc:
            out = exc.guardrail_result
            event = self._guardrail_event("output", out.guardrail.get_name(), out.agent.name)
            return AgentReply(guardrail_message(out.output.output_info), out.agent.name, (event,))
        events = self._events(result.new_items, timings)
        text = trim_to_last_sentence(str(result.final_output or "").strip()) or NOT_HEARD_REPLY
        return AgentReply(text, result.last_agent.name, tuple(events))

    @staticmethod
    def _guardrail_event(kind: str, name: str, agent: str) -> dict[str, Any]:
        return {"type": "guardrail", "kind": kind, "name": name, "agent": agent, "at": utcnow().isoformat()}

    @staticmethod
    def _events(items: list[Any], timings: _Timings) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        calls: dict[str, dict[str, Any]] = {}
        for item in items:
            if isinstance(item, ToolCallItem):
                raw = item.raw_item
                call_id = str(getattr(raw, "call_id", ""))
                event = {
                    "type": "tool_call",
                    "agent": item.agent.name,
                    "name": getattr(raw, "name", "?"),
                    "arguments": _arguments(getattr(raw, "arguments", "")),
                    "call_id": call_id,
                    "at": utcnow().isoformat(),
                }
                calls[call_id] = event
                events.append(event)
            elif isinstance(item, ToolCallOutputItem):
                out: Any = item.raw_item
                call_id = str(
                    out.get("call_id", "") if isinstance(out, dict) else getattr(out, "call_id", "")
                )
                if call_id in calls:
                    calls[call_id]["result"] = (
                        item.output if isinstance(item.output, str) else str(item.output)
                    )
                    calls[call_id]["duration_ms"] = timings.duration_ms.get(call_id)
            elif isinstance(item, HandoffOutputItem):
                events.append(
                    {
                        "type": "handoff",
                        "from": item.source_agent.name,
                        "to": item.target_agent.name,
                        "at": utcnow().isoformat(),
                    }
                )
        # a handoff call shows up as a ToolCallItem too; keep only real tool calls as `tool_call`
        handoff_names = {
            f"transfer_to_{e['to']}".lower().replace(" ", "_") for e in events if e["type"] == "handoff"
        }
        return [e for e in events if not (e["type"] == "tool_call" and e["name"] in handoff_names)]
