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
from collections.abc import Callable
from dataclasses import dataclass
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
        agent = self._current()
        for guardrail in agent.input_guardrails:
            try:
                result = await guardrail.run(agent, text, RunContextWrapper(context=None))
            except Exception:
                log.exception("input guardrail %s failed", guardrail.get_name())
                continue
            if result.output.tripwire_triggered:
                return self._tripped("input", guardrail.get_name(), agent, result.output.output_info)
        return None

    async def check_output(self, text: str) -> Tripped | None:
        agent = self._current()
        for guardrail in agent.output_guardrails:
            try:
                result = await guardrail.run(RunContextWrapper(context=None), agent, text)
            except Exception:
                log.exception("output guardrail %s failed", guardrail.get_name())
                continue
            if result.output.tripwire_triggered:
                return self._tripped("output", guardrail.get_name(), agent, result.output.output_info)
        return None

    @staticmethod
    def _tripped(kind: Literal["input", "output"], name: str, agent: Agent[Any], info: Any) -> Tripped:
        return Tripped(kind=kind, name=name, agent=agent.name, message=guardrail_message(info))
