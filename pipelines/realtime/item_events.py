"""The client's edits of the conversation: `conversation.item.create`, `.truncate`, `.retrieve`, `.delete`.

Each is one parsed client event in and its GA server event out (`conversation.item.added` / `.done`,
`.truncated`, `.retrieved`, `.deleted`), with the conversation changed and the change recorded. An item
created with input audio is transcribed first, as spoken turns are (`InputItems.transcribe`); a truncate
of the item being spoken stops that response first, so the history keeps only what was heard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from pydantic import BaseModel

from pipelines.realtime.audio import AudioFormat, InputDecoder, decode_b64
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.persistence import Record, record_of
from pipelines.realtime.protocol import Emit, ProtocolError, event, new_id

CREATABLE = ("message", "function_call", "function_call_output")


class ItemEvents:
    """Handles the conversation item events of one session.

    `input_format()` is the session's input audio format (for audio content); `transcribe(item, audio)`
    starts the transcription of an audio item; `stop_speaking(item_id)` stops the response speaking that
    item, if one is."""

    def __init__(
        self,
        conversation: Conversation,
        *,
        send: Emit,
        persist: Callable[[Record], None],
        input_format: Callable[[], AudioFormat],
        transcribe: Callable[[dict[str, Any], np.ndarray], None],
        stop_speaking: Callable[[str], Awaitable[None]],
    ) -> None:
        self.conversation = conversation
        self._send, self._persist, self._input_format = send, persist, input_format
        self._transcribe, self._stop_speaking = transcribe, stop_speaking

    async def create(self, ev: BaseModel) -> None:
        item = ev.item.model_dump(exclude_none=True)  # type: ignore[attr-defined]
        if item.get("type") not in CREATABLE:
            raise ProtocolError(f"Unsupported item type {item.get('type')!r}.", param="item.type")
        item.setdefault("id", new_id("item"))
        item.update(object="realtime.item", status="completed")
        audio = _input_audio(item)
        previous = self.conversation.add(item, ev.previous_item_id)  # type: ignore[attr-defined]
        await self._send(event("conversation.item.added", previous_item_id=previous, item=item))
        if audio is not None:  # done (and recorded) once its transcript is known
            self._transcribe(item, InputDecoder(self._input_format()).decode(decode_b64(audio)))
            return
        await self._send(event("conversation.item.done", previous_item_id=previous, item=item))
        record = record_of(item)
        if record is not None:
            self._persist(record)

    async def truncate(self, ev: BaseModel) -> None:
        item_id = ev.item_id  # type: ignore[attr-defined]
        await self._stop_speaking(item_id)
        heard = self.conversation.truncate(item_id, ev.audio_end_ms)  # type: ignore[attr-defined]
        await self._send(
            event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=ev.content_index,  # type: ignore[attr-defined]
                audio_end_ms=ev.audio_end_ms,  # type: ignore[attr-defined]
            )
        )
        self._persist(Record("assistant", item_id, heard, {"interrupted": True, "truncated": True}))

    async def retrieve(self, ev: BaseModel) -> None:
        """The JS SDK asks for each item after its transcription, to show the final text."""
        entry = self.conversation.get(ev.item_id)  # type: ignore[attr-defined]
        if entry is None:
            raise ProtocolError(
                f"Item {ev.item_id!r} not found.",  # type: ignore[attr-defined]
                code="item_not_found",
                event_id=ev.event_id,  # type: ignore[attr-defined]
                param="item_id",
            )
        await self._send(event("conversation.item.retrieved", item=entry.item))

    async def delete(self, ev: BaseModel) -> None:
        self.conversation.delete(ev.item_id)  # type: ignore[attr-defined]
        await self._send(event("conversation.item.deleted", item_id=ev.item_id))  # type: ignore[attr-defined]


def _input_audio(item: dict[str, Any]) -> str | None:
    """Take the base64 audio out of an item's `input_audio` content (it is not kept in the history)."""
    for c in item.get("content") or []:
        if c.get("type") == "input_audio" and c.get("audio"):
            audio = c.pop("audio")
            return str(audio)
    return None
