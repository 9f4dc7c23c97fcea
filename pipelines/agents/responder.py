"""How an agent turns a transcript into a reply. The seam where tools and handoffs plug in.

`InstructionResponder` runs the agent's instructions and the conversation history through a chat model;
a richer responder (tools, handoffs, guardrails through the Agents SDK Runner) implements the same
`Responder` protocol and the agent stage does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agents import Agent

from pipelines.providers.base import ChatMessage, ChatModel, GenerationOptions
from pipelines.storage.turns import HistoryEntry
from pipelines.text.sentences import trim_to_last_sentence

NOT_HEARD_REPLY = "Sorry, I didn't catch that. Could you say it again?"


@dataclass(frozen=True)
class AgentReply:
    text: str
    agent: str  # the agent that answered; differs from the caller's after a handoff
    events: tuple[dict[str, Any], ...] = field(default_factory=tuple)


class Responder(Protocol):
    def respond(self, agent: Agent[Any], history: list[HistoryEntry], user_text: str) -> AgentReply: ...


def instructions_of(agent: Agent[Any]) -> str:
    """Static instructions only; dynamic (callable) instructions need the SDK Runner's context."""
    return agent.instructions if isinstance(agent.instructions, str) else ""


def build_messages(agent: Agent[Any], history: list[HistoryEntry], user_text: str) -> list[ChatMessage]:
    messages = [ChatMessage("system", instructions_of(agent))]
    for entry in history:
        messages += [ChatMessage("user", entry.user), ChatMessage("assistant", entry.assistant)]
    messages.append(ChatMessage("user", user_text))
    return messages


@dataclass
class InstructionResponder:
    chat: ChatModel
    options: GenerationOptions

    def respond(self, agent: Agent[Any], history: list[HistoryEntry], user_text: str) -> AgentReply:
        if not user_text.strip():
            return AgentReply(NOT_HEARD_REPLY, agent.name)
        result = self.chat.complete(build_messages(agent, history, user_text), self.options)
        text = trim_to_last_sentence(result.text.strip()) or NOT_HEARD_REPLY
        return AgentReply(text, agent.name)
