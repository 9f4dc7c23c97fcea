"""One assistant message alone: text or model tokens in, the item's GA content events out (fake models)."""

from __future__ import annotations

import asyncio
from typing import Any

from pipelines.providers.base import ChatMessage
from pipelines.realtime.config import SessionConfig
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.gate import Gate
from pipelines.realtime.message_out import MessageOut
from pipelines.realtime.persistence import outcome_records
from pipelines.realtime.protocol import validate_server_event
from pipelines.realtime.response import Response
from tests.pipelines.realtime.fakes import fake_engines


def make(reply: str = "", **config: Any) -> tuple[MessageOut, Response, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    async def send(data: dict[str, Any]) -> None:
        validate_server_event(data)
        events.append(data)

    response = Response(
        engines=fake_engines(reply=reply),
        config=SessionConfig(**config),
        conversation=Conversation(),
        messages=[ChatMessage(role="user", content="Tell me about France.")],
        tools=[],
        gate=Gate(send),
        lead_ms=60_000,
    )
    return MessageOut(response), response, events


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def test_a_text_message_is_sent_sentence_by_sentence_and_closed() -> None:
    async def main() -> None:
        message, response, events = make(output_modalities=("text",))
        await message.begin()
        await message.speak_text("Hello there. How are you?")
        await message.end("completed")
        assert [e["type"] for e in events] == [
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
        ]
        assert [e["delta"] for e in of(events, "response.output_text.delta")] == [
            "Hello there.",
            " How are you?",
        ]
        assert events[-1]["item"]["content"] == [{"type": "output_text", "text": "Hello there. How are you?"}]
        assert response.outcome.text == response.outcome.heard == "Hello there. How are you?"
        assert [e["id"] for e in response.conversation] == [message.item["id"]]

    asyncio.run(main())


def test_streamed_speech_starts_with_the_first_clause_and_ends_with_the_whole_transcript() -> None:
    async def main() -> None:
        reply = "The capital of France is Paris, and it is a lovely city."
        message, response, events = make(reply)
        await message.begin()
        await message.speak_stream()
        await message.end("completed")
        deltas = [e["delta"] for e in of(events, "response.output_audio_transcript.delta")]
        assert deltas == ["The capital of France is Paris,", " and it is a lovely city."]
        assert of(events, "response.output_audio_transcript.done")[0]["transcript"] == reply
        assert of(events, "response.output_audio.delta")
        assert response.playback.sent_ms > 0 and len(response.spoken) == 2
        assert events[-1]["item"]["status"] == "completed"

    asyncio.run(main())


def test_an_interrupted_message_keeps_only_what_was_heard() -> None:
    async def main() -> None:
        message, response, events = make()
        await message.begin()
        await message.speak_text("One sentence here. Another one there.")
        response.playback.first_at = None  # nothing has played yet at the client
        await message.end("incomplete")
        done = of(events, "response.output_audio_transcript.done")[0]
        assert done["transcript"] == ""
        assert events[-1]["item"]["status"] == "incomplete"
        assert (
            response.outcome.text == "One sentence here. Another one there." and response.outcome.heard == ""
        )
        (record,) = outcome_records(response.outcome)
        assert record.kind == "assistant" and record.text == ""
        assert record.data["generated"] == "One sentence here. Another one there."

    asyncio.run(main())
