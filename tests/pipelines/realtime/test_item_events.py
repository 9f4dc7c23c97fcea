"""The client's item events alone: a parsed `conversation.item.*` event in, GA server events out."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from pydantic import BaseModel

from pipelines.realtime.conversation import Conversation, Spoken
from pipelines.realtime.item_events import ItemEvents
from pipelines.realtime.persistence import Record
from pipelines.realtime.protocol import ProtocolError, parse_client_event, validate_server_event
from tests.pipelines.realtime.fakes import tone_pcm24


class Recorder:
    """What `ItemEvents` sends and asks the session to do."""

    def __init__(self) -> None:
        self.conversation = Conversation()
        self.events: list[dict[str, Any]] = []
        self.records: list[Record] = []
        self.transcribed: list[tuple[str, int]] = []
        self.stopped: list[str] = []
        self.items = ItemEvents(
            self.conversation,
            send=self.send,
            persist=self.records.append,
            input_format=lambda: "audio/pcm",
            transcribe=lambda item, audio: self.transcribed.append((item["id"], len(audio))),
            stop_speaking=self.stop,
        )

    async def send(self, data: dict[str, Any]) -> None:
        validate_server_event(data)
        self.events.append(data)

    async def stop(self, item_id: str) -> None:
        self.stopped.append(item_id)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


def ev(**data: Any) -> BaseModel:
    return parse_client_event(json.dumps(data))


def user_text(text: str, item_id: str = "item_u") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def test_a_created_text_item_is_added_done_and_recorded() -> None:
    async def main() -> None:
        r = Recorder()
        await r.items.create(ev(type="conversation.item.create", item=user_text("Hi.")))
        assert r.types() == ["conversation.item.added", "conversation.item.done"]
        assert r.events[0]["item"]["status"] == "completed" and r.events[0]["previous_item_id"] is None
        assert r.records == [Record("user", "item_u", "Hi.")]
        await r.items.create(ev(type="conversation.item.create", item=user_text("Again.", "item_2")))
        assert r.events[-1]["previous_item_id"] == "item_u"

    asyncio.run(main())


def test_a_created_audio_item_is_transcribed_before_it_is_done() -> None:
    async def main() -> None:
        r = Recorder()
        audio = base64.b64encode(tone_pcm24(0.5)).decode()
        item = {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]}
        await r.items.create(ev(type="conversation.item.create", item=item))
        assert r.types() == ["conversation.item.added"]  # done comes with the transcript
        assert "audio" not in r.events[0]["item"]["content"][0]  # the audio is not kept in the history
        ((item_id, samples),) = r.transcribed
        assert item_id == r.events[0]["item"]["id"]
        assert 7500 < samples <= 8000  # 0.5 s at 16 kHz, less what the resampler holds back
        assert r.records == []

    asyncio.run(main())


def test_unsupported_item_types_are_refused() -> None:
    async def main() -> None:
        r = Recorder()
        with pytest.raises(ProtocolError):
            await r.items.create(
                ev(
                    type="conversation.item.create",
                    item={
                        "type": "mcp_approval_response",
                        "id": "a",
                        "approval_request_id": "r",
                        "approve": True,
                    },
                )
            )
        assert r.events == [] and len(r.conversation) == 0

    asyncio.run(main())


def test_a_truncate_stops_the_speech_and_keeps_what_was_heard() -> None:
    async def main() -> None:
        r = Recorder()
        item = {
            "id": "item_a",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_audio", "transcript": "One two. Three four."}],
        }
        r.conversation.add(item)
        entry = r.conversation.get("item_a")
        assert entry is not None
        entry.spoken = [Spoken("One two.", 0, 1000), Spoken("Three four.", 1000, 2000)]
        await r.items.truncate(
            ev(type="conversation.item.truncate", item_id="item_a", content_index=0, audio_end_ms=1500)
        )
        assert r.stopped == ["item_a"]
        assert r.types() == ["conversation.item.truncated"] and r.events[0]["audio_end_ms"] == 1500
        assert r.records == [
            Record("assistant", "item_a", "One two. Three", {"interrupted": True, "truncated": True})
        ]

    asyncio.run(main())


def test_retrieve_and_delete() -> None:
    async def main() -> None:
        r = Recorder()
        await r.items.create(ev(type="conversation.item.create", item=user_text("Hi.")))
        await r.items.retrieve(ev(type="conversation.item.retrieve", item_id="item_u"))
        assert r.events[-1]["type"] == "conversation.item.retrieved"
        assert r.events[-1]["item"]["content"][0]["text"] == "Hi."
        await r.items.delete(ev(type="conversation.item.delete", item_id="item_u"))
        assert r.events[-1] == {**r.events[-1], "type": "conversation.item.deleted", "item_id": "item_u"}
        with pytest.raises(ProtocolError) as err:
            await r.items.retrieve(ev(type="conversation.item.retrieve", item_id="item_u", event_id="e1"))
        assert err.value.code == "item_not_found" and err.value.event_id == "e1"

    asyncio.run(main())
