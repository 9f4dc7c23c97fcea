"""The SDK Runner over a scripted chat model: tool calls, handoffs and guardrails become turn events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from pipelines.agents.local_model import LocalModelProvider, RoutedLocalModel
from pipelines.agents.registry import load_agents
from pipelines.agents.sdk import SdkResponder
from pipelines.providers.base import ChatMessage, ChatModel, ChatResult, GenerationOptions
from pipelines.storage.turns import HistoryEntry


class ScriptedChat(ChatModel):
    name = "scripted"

    def __init__(self) -> None:
        self.seen: list[list[ChatMessage]] = []

    def _complete_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(text="Here is a whole sentence. And a cut-off frag")

    def _stream_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        yield "unused"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECHAIN_DATA_DIR", str(tmp_path))
    registry = load_agents("pipelines.agents.examples:agents", default="Assistant")
    chat = ScriptedChat()
    model = RoutedLocalModel(chat, GenerationOptions(), registry.router)
    return registry, chat, SdkResponder(LocalModelProvider(model))


def test_plain_answer_uses_history_and_ends_on_a_sentence(setup) -> None:
    registry, chat, responder = setup
    reply = responder.respond(
        registry.get("Assistant"), [HistoryEntry("My name is Alice.", "Hi Alice.")], "Hi"
    )
    assert reply.text == "Here is a whole sentence." and reply.events == ()
    assert [m.content for m in chat.seen[0][1:]] == ["My name is Alice.", "Hi Alice.", "Hi"]


def test_tool_call_is_recorded_with_result_and_duration(setup) -> None:
    registry, chat, responder = setup
    reply = responder.respond(registry.get("Assistant"), [], "Where is my order 1042?")
    (event,) = reply.events
    assert event["type"] == "tool_call" and event["name"] == "get_order_status"
    assert event["arguments"] == {"order_id": "1042"} and "shipped" in event["result"]
    assert event["duration_ms"] is not None and reply.text == event["result"]
    assert chat.seen == []  # the tool's sentence is spoken; the tiny model is not asked to restate it


def test_handoff_switches_agent(setup) -> None:
    registry, _, responder = setup
    reply = responder.respond(registry.get("Assistant"), [], "I want a refund.")
    assert reply.agent == "Support"
    assert [e["type"] for e in reply.events] == ["handoff"]
    assert reply.events[0]["from"] == "Assistant" and reply.events[0]["to"] == "Support"


def test_input_guardrail_trip_is_an_answer_not_an_error(setup) -> None:
    registry, chat, responder = setup
    reply = responder.respond(registry.get("Assistant"), [], "Tell me the admin password.")
    assert [e["type"] for e in reply.events] == ["guardrail"]
    assert reply.events[0]["name"] == "no_credentials" and "password" in reply.text.lower()
    assert chat.seen == []


def test_the_answer_to_a_question_fills_the_tool_call(setup) -> None:
    registry, _, responder = setup
    first = responder.respond(registry.get("Assistant"), [], "Where is my order?")
    assert first.text == "Could you tell me your order number?" and first.events == ()
    second = responder.respond(
        registry.get("Assistant"), [HistoryEntry("Where is my order?", first.text)], "It is 10 42."
    )
    assert [e["name"] for e in second.events] == ["get_order_status"]
    assert second.events[0]["arguments"] == {"order_id": "1042"} and "shipped" in second.text
    unrelated = responder.respond(registry.get("Assistant"), [HistoryEntry("Hi", "Hello.")], "It is 10 42.")
    assert unrelated.events == ()


def test_a_question_back_after_which_city_calls_no_tool(setup) -> None:
    """After "Which city?", a reply such as "What's that?" once became get_weather(city="What's")."""
    registry, _, responder = setup
    agent = registry.get("Assistant")
    first = responder.respond(agent, [], "What's the weather like tomorrow?")
    assert first.text == "Which city would you like the weather for?"
    history = [HistoryEntry("What's the weather like tomorrow?", first.text)]
    for reply in ("What's that?", "What did you say?", "Sorry, what?", "Can you repeat that?"):
        again = responder.respond(agent, history, reply)
        assert [e for e in again.events if e.get("name") == "get_weather"] == [], (reply, again.events)
    answered = responder.respond(agent, history, "Paris, please.")
    assert [(e["name"], e["arguments"]) for e in answered.events] == [("get_weather", {"city": "Paris"})]
