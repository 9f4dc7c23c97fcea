"""The agents' guardrails in a realtime session, so an agent keeps its rules on both paths.

The chained path runs them through the Agents SDK Runner; a live session has no Runner, so this runs the
same `InputGuardrail` / `OutputGuardrail` objects of the session's current agent directly:

- input guardrails on the user's transcript, before any tool is routed or the model is asked; a trip makes
  the reply the guardrail's message (as on the chained path);
- output guardrails on the reply so far, before each sentence is spoken. The SDK's own realtime session
  checks text already being played and interrupts it; a sentence checked before synthesis is never heard.
  A trip stops generation and speaks the guardrail's message instead.

A guardrail that raises is logged and treated as not tripped: a broken rule must not end the call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

from agents import Agent, RunContextWrapper

from pipelines.agents.sdk import guardrail_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tripped:
    """A guardrail that fired: which one, and the words said instead."""

    kind: Literal["input", "output"]
    name: str
    agent: str
    message: str


class Guard(Protocol):
    async def check_input(self, text: str) -> Tripped | None: ...

    async def check_output(self, text: str) -> Tripped | None: ...


class AgentGuardrails:
    """The guardrails of whichever agent the session is on now (it changes on a handoff)."""

    def __init__(self, current: Callable[[], Agent[Any]]) -> None:
        self._current = current

    async def check_input(self, text: str) -> Tripped | None:
        agent, ctx = self._current(), RunContextWrapper(context=None)
        checks = [(g.get_name(), partial(g.run, agent, text, ctx)) for g in agent.input_guardrails]
        return await _first_tripped("input", agent, checks)

    async def check_output(self, text: str) -> Tripped | None:
        agent, ctx = self._current(), RunContextWrapper(context=None)
        checks = [(g.get_name(), partial(g.run, ctx, agent, text)) for g in agent.output_guardrails]
        return await _first_tripped("output", agent, checks)


async def _first_tripped(
    kind: Literal["input", "output"],
    agent: Agent[Any],
    checks: Sequence[tuple[str, Callable[[], Awaitable[Any]]]],
) -> Tripped | None:
    """Run the guardrails in order; the first that trips decides."""
    for name, check in checks:
        try:
            result = await check()
        except Exception:
            log.exception("%s guardrail %s failed", kind, name)
            continue
        if result.output.tripwire_triggered:
            message = guardrail_message(result.output.output_info)
            return Tripped(kind=kind, name=name, agent=agent.name, message=message)
    return None
