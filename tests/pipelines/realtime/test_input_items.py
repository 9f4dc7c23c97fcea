"""User audio items alone: committed audio in, the item's GA events and its record out (fake STT)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from pipelines.providers.base import SpeechToText, Transcript
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.input_items import InputItems
from pipelines.realtime.persistence import Record
from pipelines.realtime.protocol import validate_server_event
from pipelines.realtime.speculation import Speculation
from tests.pipelines.realtime.fakes import FixedSTT, fake_engines

SECOND = np.full(16_000, 0.1, dtype=np.float32)


class BrokenSTT(SpeechToText):
    name = "broken"

    def _transcribe_impl(self, audio: np.ndarray, *, language: str | None, prompt: str | None) -> Transcript:
        raise RuntimeError("model crashed")


def make(
    stt: SpeechToText | None = None, *, transcripts: bool = True
) -> tuple[InputItems, Conversation, list[dict[str, Any]], list[Record]]:
    engines = fake_engines()
    if stt is not None:
        engines.stt = stt
    conversation = Conversation()
    events: list[dict[str, Any]] = []
    records: list[Record] = []

    async def send(data: dict[str, Any]) -> None:
        validate_server_event(data)
        events.append(data)

    items = InputItems(
        engines, conversation, send=send, persist=records.append, wants_transcripts=lambda: transcripts
    )
    return items, conversation, events, records


async def settle(items: InputItems) -> None:
    while items.pending:
        await asyncio.wait(list(items.pending))


def test_committed_audio_is_an_item_at_once_and_its_words_follow() -> None:
    async def main() -> None:
        items, conversation, events, records = make(FixedSTT("Hello there."))
        await items.commit(SECOND, "item_1")
        assert [e["type"] for e in events] == ["input_audio_buffer.committed", "conversation.item.added"]
        assert items.pending  # the transcript is on its way; a response would wait for it
        await settle(items)
        types = [e["type"] for e in events]
        assert types[2:] == [
            "conversation.item.input_audio_transcription.completed",
            "conversation.item.done",
        ]
        assert events[2]["transcript"] == "Hello there." and events[2]["usage"]["seconds"] == 1.0
        assert events[-1]["item"]["content"][0]["transcript"] == "Hello there."
        assert conversation.last_user_text() == "Hello there."
        assert records == [Record("user", "item_1", "Hello there.", {"audio_ms": 1000})]

    asyncio.run(main())


def test_without_transcription_asked_for_the_item_still_gets_its_words() -> None:
    async def main() -> None:
        items, conversation, events, _ = make(FixedSTT("Quiet."), transcripts=False)
        await items.commit(SECOND, "item_1")
        await settle(items)
        assert "conversation.item.input_audio_transcription.completed" not in [e["type"] for e in events]
        assert conversation.last_user_text() == "Quiet."

    asyncio.run(main())


def test_a_failed_transcription_is_reported_and_the_turn_recorded_empty() -> None:
    async def main() -> None:
        items, _, events, records = make(BrokenSTT())
        await items.commit(SECOND, "item_1")
        await settle(items)
        failed = next(e for e in events if e["type"].endswith("transcription.failed"))
        assert failed["error"]["code"] == "transcription_failed" and "crashed" in failed["error"]["message"]
        assert events[-1]["type"] == "conversation.item.done"
        assert records[0].text == ""

    asyncio.run(main())


def test_a_speculations_transcript_of_the_same_audio_is_reused() -> None:
    async def main() -> None:
        stt = FixedSTT("never asked")
        items, _, events, _ = make(stt)

        async def done() -> None:
            pass

        spec = Speculation(task=asyncio.ensure_future(done()), transcript="Already heard.")
        await items.commit(SECOND, "item_1", spec)
        await settle(items)
        assert stt.calls == 0
        assert events[-1]["item"]["content"][0]["transcript"] == "Already heard."

    asyncio.run(main())


def test_audio_too_short_for_words_is_not_sent_to_the_model() -> None:
    async def main() -> None:
        stt = FixedSTT("phantom words")
        items, _, _, _ = make(stt)
        assert await items.stt(SECOND[:800]) == ""
        assert await items.stt(SECOND) == "phantom words" and stt.calls == 1

    asyncio.run(main())
