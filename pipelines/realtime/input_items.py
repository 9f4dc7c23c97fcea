"""The user's audio as conversation items: a committed buffer becomes a user item, then gets its words.

A turn's audio is committed at once (`input_audio_buffer.committed`, `conversation.item.added`, with an
empty transcript) and transcribed in a task, so frames keep flowing into the VAD while Whisper runs. The
transcript of a speculation prepared for the same audio is reused when there is one. When the words are
known, the item is completed (`...input_audio_transcription.completed` if the session asked for
transcripts, `.failed` if the model failed) and recorded. The tasks still running are `pending`: a
response waits for them, so it answers what the user said.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from pipelines.realtime.conversation import Conversation
from pipelines.realtime.engines import Engines
from pipelines.realtime.persistence import Record
from pipelines.realtime.protocol import Emit, event
from pipelines.realtime.speculation import Speculation

log = logging.getLogger(__name__)

MIN_STT_SAMPLES = 1600  # 100 ms at 16 kHz: shorter audio holds no words worth a Whisper call
STT_TAIL_SAMPLES = 4_000  # 250 ms of silence after the words for Whisper (see `InputItems.stt`)


class InputItems:
    """Commits and transcribes a session's user audio items.

    `send` emits a server event; `persist` queues a record; `wants_transcripts()` says whether the
    session asked for the transcription events (`audio.input.transcription`)."""

    def __init__(
        self,
        engines: Engines,
        conversation: Conversation,
        *,
        send: Emit,
        persist: Callable[[Record], None],
        wants_transcripts: Callable[[], bool],
        prompt: Callable[[], str | None] = lambda: None,
    ) -> None:
        """`prompt()`: Whisper's initial prompt for the next transcription, read at each call (a handoff
        changes the session's agent, and with it the vocabulary)."""
        self.engines, self.conversation = engines, conversation
        self._send, self._persist, self._wants_transcripts = send, persist, wants_transcripts
        self._prompt = prompt
        self.pending: set[asyncio.Task[None]] = set()

    async def commit(self, audio: np.ndarray, item_id: str, spec: Speculation | None = None) -> None:
        """Add the user item of `audio` now; its transcript follows in a task (see `pending`)."""
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self.conversation.add(item)
        await self._send(event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous))
        await self._send(event("conversation.item.added", previous_item_id=previous, item=item))
        self.transcribe(item, audio, spec)

    def transcribe(self, item: dict[str, Any], audio: np.ndarray, spec: Speculation | None = None) -> None:
        """Transcribe `item`'s audio in a task (also for audio items the client creates)."""
        task = asyncio.ensure_future(self._transcribe(item, audio, spec))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def stt(self, audio: np.ndarray) -> str:
        """The words of `audio` (16 kHz), from a worker thread; "" for audio too short to hold any.

        Whisper hears them with a quarter second of silence after them: a speculation cuts the audio
        ~0.1 s into the pause, and cut that short Whisper drops the closing "?" or "." that semantic_vad
        reads as a finished sentence (piper questions: same words either way, punctuation restored)."""
        if len(audio) < MIN_STT_SAMPLES:
            return ""
        padded = np.concatenate([audio, np.zeros(STT_TAIL_SAMPLES, dtype=audio.dtype)])
        return await asyncio.to_thread(self.engines.transcribe, padded, self._prompt())

    async def wait(self, timeout_s: float) -> None:
        """Let the transcriptions still running finish (a closing session's last words)."""
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=timeout_s)

    def cancel(self) -> None:
        for task in list(self.pending):
            task.cancel()

    async def _transcribe(self, item: dict[str, Any], audio: np.ndarray, spec: Speculation | None) -> None:
        text = await _speculated(spec)
        content = item["content"][0]
        try:
            if text is None:
                text = await self.stt(audio)
        except Exception as exc:
            log.exception("transcription failed")
            await self._send(
                event(
                    "conversation.item.input_audio_transcription.failed",
                    item_id=item["id"],
                    content_index=0,
                    error={"type": "server_error", "code": "transcription_failed", "message": str(exc)},
                )
            )
            text = ""
        else:
            content["transcript"] = text
            if self._wants_transcripts():
                await self._send(
                    event(
                        "conversation.item.input_audio_transcription.completed",
                        item_id=item["id"],
                        content_index=0,
                        transcript=text,
                        usage={"type": "duration", "seconds": round(len(audio) / 16_000, 3)},
                    )
                )
        await self._send(event("conversation.item.done", item=item))
        self._persist(Record("user", item["id"], text or "", {"audio_ms": len(audio) // 16}))


async def _speculated(spec: Speculation | None) -> str | None:
    """The transcript a speculation made of the same audio; None if there is none or it failed."""
    if spec is None:
        return None
    try:
        assert spec.task is not None
        await asyncio.shield(spec.task)
    except Exception:  # the speculation failed: transcribe again the ordinary way
        return None
    return spec.transcript
