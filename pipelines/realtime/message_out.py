"""The assistant message of a response: its item, its one content part, and the speech or text in it.

`MessageOut` is what a response says, once it knows it will say something: the model's streamed tokens
(or a planned sentence) become sentences, each checked by the output guardrails, synthesized in a thread
and sent as `response.output_audio.delta` chunks with their transcript deltas (or as text deltas). The
first clause of a long opening sentence is spoken as soon as it exists, so the first audio waits for a few
words, not a whole sentence. Audio is paced to at most `lead_ms` ahead of real-time playback (`Playback`),
so the server knows how much the client can have heard when the user barges in; on interruption the item
keeps only the words heard.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.realtime.audio import OutputEncoder, chunk_bytes, duration_ms
from pipelines.realtime.conversation import Spoken
from pipelines.realtime.engines import stream_in_thread
from pipelines.realtime.protocol import event, new_id
from pipelines.text.clauses import first_chunk
from pipelines.text.sentences import SentenceSplitter, split_sentences

if TYPE_CHECKING:
    from pipelines.realtime.response import Response

CHUNK_MS = 100  # size of one output audio delta


@dataclass
class Playback:
    """Audio sent so far and when it started, to estimate what the client has played."""

    sent_ms: float = 0.0
    first_at: float | None = None

    def played_ms(self) -> float:
        if self.first_at is None:
            return 0.0
        return min(self.sent_ms, (time.monotonic() - self.first_at) * 1000)


class MessageOut:
    """The assistant message item of a response, with its one content part (audio+transcript, or text)."""

    def __init__(self, response: Response) -> None:
        self.r = response
        self.audio = response.config.audio_out
        self.item: dict[str, Any] = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        self.index = len(response.output)
        self.text = ""  # generated so far
        self.sent_text = ""  # transcript deltas sent so far
        self.begun = False
        self.cut = False  # an output guardrail replaced a sentence: nothing more is said
        self.first_out = False  # the first clause went to speech: later tokens are no longer urgent
        self.encoder = OutputEncoder(response.config.output_format, response.engines.tts.sample_rate)

    def _ids(self) -> dict[str, Any]:
        return {
            "response_id": self.r.id,
            "item_id": self.item["id"],
            "output_index": self.index,
            "content_index": 0,
        }

    async def begin(self) -> None:
        self.begun = True
        self.r.output.append(self.item)
        self.r.outcome.item_id = self.item["id"]
        await self.r.add_item(self.item, self.index)
        part = {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
        await self.r.gate.send(event("response.content_part.added", part=part, **self._ids()))

    async def speak_stream(self) -> None:
        """Tokens from the model in a thread -> sentence queue -> speech, overlapped."""
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        producer = asyncio.create_task(self._produce(sentences))
        try:
            while (sentence := await sentences.get()) is not None:
                await self._say(sentence)
                if self.cut:
                    return  # the guardrail's message was the last word; closing stops the model
            await producer  # re-raises a model error
        finally:
            producer.cancel()

    async def speak_text(self, text: str) -> None:
        for sentence in split_sentences(text):
            self.text = f"{self.text} {sentence}".strip()
            await self._say(sentence)
            if self.cut:
                return

    async def _produce(self, sentences: asyncio.Queue[str | None]) -> None:
        r = self.r
        splitter = SentenceSplitter()
        options = r.engines.options(r.config.max_output_tokens)
        try:
            head: str | None = ""  # text before the first release; a long first sentence is cut early
            async for delta in stream_in_thread(
                r.slot.chat,
                r.messages,
                options,
                r.stop,
                r.engines.compute,
                r.slot.generating,
                urgent=lambda: not self.first_out,
            ):
                r.tokens_out += 1
                self.text += delta
                released = splitter.feed(delta)
                if head is not None:
                    head += delta
                    clause = first_chunk(head) if not released else None
                    if clause is not None:
                        released, splitter = [clause], SentenceSplitter()
                        splitter.feed(head[len(clause) :])
                    if released:
                        head, self.first_out = None, True
                for sentence in released:
                    sentences.put_nowait(sentence.strip())
            tail = splitter.flush()
            if tail:
                sentences.put_nowait(tail)
        finally:
            sentences.put_nowait(None)

    async def _guarded(self, sentence: str) -> str:
        """The sentence, or the guardrail's message if an output guardrail trips on the reply with it."""
        r = self.r
        if r.guard is None or r.outcome.guardrail is not None:
            return sentence  # nothing to check, or this is already the guardrail's own message
        tripped = await r.guard.check_output(f"{self.sent_text} {sentence}".strip())
        if tripped is None:
            return sentence
        r.outcome.guardrail = tripped
        self.cut = True
        return tripped.message

    async def _say(self, sentence: str) -> None:
        sentence = await self._guarded(sentence)
        if not self.audio:
            delta = sentence if not self.sent_text else f" {sentence}"
            self.sent_text += delta
            await self.r.gate.send(event("response.output_text.delta", delta=delta, **self._ids()))
            return
        speech = await asyncio.to_thread(self.r.engines.synthesize, sentence, urgent=not self.r.spoken)
        if self.r.stop.is_set():
            return
        if self.r.spoken:  # a speculative reply prepares its first sentence only, then waits to be adopted
            await self.r.gate.opened.wait()
        data = self.encoder.encode(speech.samples)
        delta = sentence if not self.sent_text else f" {sentence}"
        self.sent_text += delta
        pb = self.r.playback
        start = pb.sent_ms
        self.r.spoken.append(
            Spoken(sentence, start, start + duration_ms(len(data), self.r.config.output_format))
        )
        await self.r.gate.send(event("response.output_audio_transcript.delta", delta=delta, **self._ids()))
        for chunk in chunk_bytes(data, self.r.config.output_format, CHUNK_MS):
            await self._pace()
            if pb.first_at is None and self.r.gate.is_open:
                pb.first_at = time.monotonic()
            await self.r.gate.send(event("response.output_audio.delta", delta=_b64(chunk), **self._ids()))
            pb.sent_ms += duration_ms(len(chunk), self.r.config.output_format)

    async def _pace(self) -> None:
        pb = self.r.playback
        if pb.first_at is None:
            return
        ahead = pb.sent_ms - (time.monotonic() - pb.first_at) * 1000
        if ahead > self.r.lead_ms:
            await asyncio.sleep((ahead - self.r.lead_ms) / 1000)

    async def end(self, status: str) -> None:
        """Close the item; on interruption its transcript is only what the user heard."""
        r = self.r
        if status == "completed":
            transcript = self.sent_text.strip()
        elif self.audio:
            transcript = r.played_text()
            played = r.playback.played_ms()
            r.spoken[:] = [s for s in r.spoken if s.start_ms < played]
            if r.spoken and r.spoken[-1].end_ms > played:
                last = r.spoken[-1]
                r.spoken[-1] = Spoken(
                    last.text, last.start_ms, max(last.start_ms, min(last.end_ms, r.playback.sent_ms))
                )
        else:
            transcript = self.sent_text.strip()
        # after an output guardrail the blocked words are not kept anywhere, as on the chained path
        generated = self.sent_text if self.cut else self.text
        r.outcome.text, r.outcome.heard = generated.strip(), transcript
        ids = self._ids()
        if self.audio and status == "completed":  # the resampler's last ~30 ms, held for continuity
            tail = self.encoder.encode(np.zeros(0, dtype=np.int16), last=True)
            if tail:
                await r.gate.send(event("response.output_audio.delta", delta=_b64(tail), **ids))
                r.playback.sent_ms += duration_ms(len(tail), r.config.output_format)
        if self.audio:
            content = {"type": "output_audio", "transcript": transcript}
            part = {"type": "audio", "transcript": transcript}
            await r.gate.send(event("response.output_audio.done", **ids))
            await r.gate.send(event("response.output_audio_transcript.done", transcript=transcript, **ids))
        else:
            content = {"type": "output_text", "text": transcript}
            part = {"type": "text", "text": transcript}
            await r.gate.send(event("response.output_text.done", text=transcript, **ids))
        await r.gate.send(event("response.content_part.done", part=part, **ids))
        self.item["content"] = [content]
        self.item["status"] = status
        spans = list(r.spoken)
        entry_id = self.item["id"]

        def remember() -> None:
            entry = r.conversation.get(entry_id)
            if entry is not None:
                entry.spoken = spans

        await r.gate.do(remember)
        await r.item_done(self.item, self.index)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
