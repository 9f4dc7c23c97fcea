"""Tools in a realtime session.

Function tools declared by the client in `session.update` are executed by the client: the server emits
the call and waits for a `function_call_output` item and a `response.create`. Tools that run here (the
agent definitions shared with the chained path) plug in through `ToolRunner`; a call to one of those is
run by the server and the response continues on its own, as the Agents SDK does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ToolRunner(Protocol):
    """Server-side tools: their OpenAI function schemas, and how to run one."""

    def definitions(self) -> Sequence[dict[str, Any]]: ...

    async def run(self, name: str, arguments: str) -> str:
        """Run tool `name` with JSON `arguments`; return its output as text (errors included, as text)."""
        ...


class NoTools:
    """The default: every tool is the client's."""

    def definitions(self) -> Sequence[dict[str, Any]]:
        return ()

    async def run(self, name: str, arguments: str) -> str:  # pragma: no cover - never called
        raise KeyError(name)


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
