"""Whisper's initial prompt for a turn addressed to an agent: the words of the agent's own tools.

Why: a tool request is routed from its transcript, and Whisper tiny.en mishears the very words that carry
the intent when nothing in its context makes them likely ("look up order 39" came back as "look at
powder free eye"; espeak-ng voice, bench/tools.py's calibration split). Whisper reads `initial_prompt` as
text said before the clip, so a prompt that names what the agent can do makes those words likelier
without naming any city, order number or other value a caller might say. It is built from the agent
definition alone (each function tool's description and each handoff's target), so the chained stt stage
and every realtime session prompt Whisper the same way for the same agent, and a user's agents module
gets its own vocabulary without writing one.
"""

from __future__ import annotations

from typing import Any

from agents import Agent, FunctionTool, Handoff

#: Whisper keeps at most 223 prompt tokens; a short prompt also keeps each decode cheap.
MAX_PROMPT_CHARS = 400


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".!?" else text + "."


def transcription_prompt(agent: Agent[Any]) -> str | None:
    """The agent's tool descriptions and "Transfer to <agent>." per handoff, or None when it has none
    (an agent without tools is prompted with nothing: ordinary speech stays as Whisper hears it)."""
    parts = [_sentence(t.description) for t in agent.tools if isinstance(t, FunctionTool) and t.description]
    for handoff in agent.handoffs:
        name = handoff.agent_name if isinstance(handoff, Handoff) else handoff.name
        parts.append(f"Transfer to {name}.")
    prompt = ""
    for part in dict.fromkeys(p for p in parts if p):
        if len(prompt) + len(part) + 1 > MAX_PROMPT_CHARS:
            break
        prompt = f"{prompt} {part}".strip()
    return prompt or None
