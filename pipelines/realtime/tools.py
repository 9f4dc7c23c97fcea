"""Tools in a realtime session.

Function tools declared by the client in `session.update` are executed by the client: the server emits
a `function_call` item and waits for a `function_call_output` item and a `response.create`. Tools that run
here (the agent definitions shared with the chained path) plug in through `ToolRunner`; a call to one of
those is run by the server inside the response and shown as an `mcp_call` item with `server_label`
`SERVER_LABEL` (the GA item for tools the server executes), and the session responds again on its own
(see `server_tools`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pipelines.providers.base import ChatMessage, ToolCall
from pipelines.realtime.guardrails import Guard

SERVER_LABEL = "voicechain"  # the `server_label` of the `mcp_call` items of tools that run here


class ToolRunner(Protocol):
    """Server-side tools: their OpenAI function schemas, and how to run one."""

    def definitions(self) -> Sequence[dict[str, Any]]: ...

    async def run(self, name: str, arguments: str) -> str:
        """Run tool `name` with JSON `arguments`; return its output as text (errors included, as text)."""
        ...


class ServerRunner(ToolRunner, Protocol):
    """The tools a response runs here itself, by name (`server_tools.ServerTools`)."""

    def names(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class Plan:
    """What a response does instead of asking the model: call these tools, or say this sentence."""

    calls: tuple[ToolCall, ...] = ()
    say: str | None = None


@runtime_checkable
class AgentRunner(ToolRunner, Protocol):
    """Server-side tools that belong to an agent (`pipelines.realtime.agent_tools`): the runner decides
    from the words when a tool or handoff is called (the small local model cannot), and a handoff
    changes the session's current agent."""

    @property
    def agent_name(self) -> str: ...

    @property
    def instructions(self) -> str: ...

    @property
    def guardrails(self) -> Guard:
        """The current agent's input and output guardrails."""
        ...

    def plan(self, messages: Sequence[ChatMessage]) -> Plan | None:
        """The decision for a response over `messages`; None lets the model reply."""
        ...


class NoTools:
    """The default: every tool is the client's."""

    def definitions(self) -> Sequence[dict[str, Any]]:
        return ()

    async def run(self, name: str, arguments: str) -> str:  # pragma: no cover - never called
        raise KeyError(name)


def transcription_prompt_of(runner: ToolRunner) -> str | None:
    """The current agent's vocabulary for Whisper (`AgentTools.transcription_prompt`); None without an
    agent, or for a runner that has none. Read at each transcription, so it follows a handoff."""
    prompt = getattr(runner, "transcription_prompt", None)
    return prompt if isinstance(prompt, str) else None


def server_tool_names(runner: ToolRunner) -> frozenset[str]:
    return frozenset(str(d["name"]) for d in runner.definitions())


def tool_schemas(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Realtime function tools (flat) -> chat-completions tool schemas (nested under `function`)."""
    return [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t.get("description") or "",
                "parameters": t.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        for t in tools
    ]
