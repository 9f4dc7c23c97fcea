"""One response: LLM tokens -> sentences -> TTS -> `response.output_audio.delta`, streamed and cancellable.

Two tasks overlap so the first sentence is spoken while the model is still writing the next: a producer
turns streamed tokens into sentences, the consumer synthesizes each sentence (in a thread) and sends its
audio. Audio is paced to at most `lead_ms` ahead of real-time playback, so that the server knows how much
the client can have heard when the user barges in, and little audio is left queued at the client.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.providers.base import ChatMessage, ChatResult
from pipelines.realtime.audio import OutputEncoder, chunk_bytes, duration_ms
from pipelines.realtime.config import SessionConfig
from pipelines.realtime.conversation import Conversation, Spoken, heard_text
from pipelines.realtime.engines import Engines, LlmSlot, stream_in_thread
from pipelines.realtime.gate import Gate
from pipelines.realtime.guardrails import Guard, Tripped
from pipelines.realtime.protocol import event, new_id
from pipelines.realtime.tools import Plan, tool_schemas
from pipelines.text.clauses import first_chunk
from pipelines.text.sentences import SentenceSplitter, split_sentences

CHUNK_MS = 100  # size of one output audio delta


@dataclass
class Outcome:
    """What a finished response leaves behind, for the session (server tools) and persistence."""

    response_id: str
    status: str
    reason: str | None
    text: str = ""  # everything generated
    heard: str = ""  # what was (estimated to be) played
    item_id: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    guardrail: Tripped | None = None  # the guardrail whose message replaced the reply


@dataclass
class Playback:
    """Audio sent so far and when it started, to estimate what the client has played."""

    sent_ms: float = 0.0
    first_at: float | None = None

    def played_ms(self) -> float:
        if self.first_at is None:
            return 0.0
        return min(self.sent_ms, (time.monotonic() - self.first_at) * 1000)


class Response:
    """A running response. `cancel(reason)` stops model work at once and finishes with status cancelled."""

    def __init__(
        self,
        *,
        engines: Engines,
        config: SessionConfig,
        conversation: Conversation,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]],
        gate: Gate,
        lead_ms: float = 1000.0,
        plan: Plan | None = None,
        guard: Guard | None = None,
        persist: Callable[[Outcome], Awaitable[None]] | None = None,
        slot: LlmSlot | None = None,
    ) -> None:
        self.id = new_id("resp")
        self.engines, self.config, self.conversation = engines, config, conversation
        self.messages, self.tools, self.gate = messages, tools, gate
        self.lead_ms = lead_ms
        self.plan = plan  # decided by the session's agent (server tools): call tools or say a sentence
        self.guard = guard  # the agent's guardrails, on the user's words and on each sentence before speech
        self.persist = persist  # stores the outcome; awaited before `response.done` goes out
        self.slot = slot or engines.slots[0]  # the LLM context of this session
        self.stop = threading.Event()
        self.playback = Playback()
        self.spoken: list[Spoken] = []
        self.output: list[dict[str, Any]] = []
        self.outcome = Outcome(self.id, "in_progress", None)
        self._cancel_reason: str | None = None
        self._tokens_out = 0
        self._running = False
        self._closing = False  # past the point where cancelling could change the outcome
        self._task: asyncio.Task[Outcome] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[Outcome]:
        self._task = asyncio.create_task(self._run(), name=f"response {self.id}")
        return self._task

    @property
    def done(self) -> bool:
        return self._task is None or self._task.done()

    async def cancel(self, reason: str) -> Outcome:
        """Stop generation and speech now; returns once `response.done` (cancelled) has been sent."""
        if self._task is None:
            return self.outcome
        if not self._task.done() and not self._closing:
            self._cancel_reason = reason
            self.stop.set()
            if self._running:  # a task cancelled before its first step would never send response.done
                self._task.cancel()
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            return self.outcome

    async def cancel_unstarted(self, reason: str) -> Outcome:
        """A requested response cancelled before it began: the client still gets created + done."""
        await self.gate.send(event("response.created", response=self._response_obj("in_progress")))
        return await self._finish("cancelled", reason)

    async def wait(self) -> Outcome:
        """The outcome, once `response.done` is sent; waiting does not cancel the response."""
        assert self._task is not None, "start() first"
        return await asyncio.shield(self._task)

    async def adopt(self) -> None:
        """Release a speculative response: its held events go out and playback timing starts now."""
        if self.playback.sent_ms > 0:
            self.playback.first_at = time.monotonic()
        await self.gate.open()

    def played_text(self) -> str:
        return heard_text(self.spoken, self.playback.played_ms())

    # --- the run ---------------------------------------------------------------------------------

    def _response_obj(self, status: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": status,
            "status_details": details,
            "output": self.output,
            "conversation_id": "conv_default",
            "output_modalities": list(self.config.output_modalities),
            "max_output_tokens": self.config.max_output_tokens,
            "audio": {"output": {"format": {"type": self.config.output_format}, "voice": self.config.voice}},
            "usage": self._usage(),
            "metadata": None,
        }

    def _usage(self) -> dict[str, Any]:
        prompt = sum(len(m.content) for m in self.messages) // 4  # rough: the local model reports no usage
        out = self._tokens_out
        return {
            "total_tokens": prompt + out,
            "input_tokens": prompt,
            "output_tokens": out,
            "input_token_details": {"text_tokens": prompt, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": out, "audio_tokens": 0},
        }

    async def _run(self) -> Outcome:
        self._running = True
        await self.gate.send(event("response.created", response=self._response_obj("in_progress")))
        if self._cancel_reason is not None:
            return await self._finish("cancelled", self._cancel_reason)
        message: _MessageOut | None = None
        try:
            plan = await self._input_checked(self.plan)
            if plan is not None and plan.calls:
                self._closing = True
                await self._function_calls(ChatResult(text="", tool_calls=plan.calls))
                return await self._finish("completed", None)
            if plan is not None and plan.say is not None:
                message = _MessageOut(self)
                await message.begin()
                await message.speak_text(plan.say)
            elif self.tools and self.config.tool_choice != "none":
                result = await asyncio.to_thread(
                    self.engines.complete,
                    self.messages,
                    self.engines.options(self.config.max_output_tokens, tool_schemas(self.tools)),
                    self.slot,
                )
                self._tokens_out = result.completion_tokens
                if result.tool_calls:
                    self._closing = True
                    await self._function_calls(result)
                    return await self._finish("completed", None)
                message = _MessageOut(self)
                await message.begin()
                await message.speak_text(result.text)
            else:
                message = _MessageOut(self)
                await message.begin()
                await message.speak_stream()
            self._closing = True
            await message.end("completed")
            return await self._finish("completed", None)
        except asyncio.CancelledError:
            reason = self._cancel_reason or "client_cancelled"
            if message is not None and message.begun:
                await message.end("incomplete")
            return await self._finish("cancelled", reason)
        except Exception as exc:  # a model failure ends this response, never the session
            self.stop.set()
            if message is not None and message.begun:
                await message.end("incomplete")
            details = {
                "type": "failed",
                "error": {"type": "server_error", "code": "model_error", "message": str(exc)},
            }
            return await self._finish("failed", None, details)

    async def _input_checked(self, plan: Plan | None) -> Plan | None:
        """The plan, unless an input guardrail trips on the user's words: then its message is the reply."""
        last = self.messages[-1] if self.messages else None
        if self.guard is None or last is None or last.role != "user":
            return plan
        tripped = await self.guard.check_input(last.content)
        if tripped is None:
            return plan
        self.outcome.guardrail = tripped
        return Plan(say=tripped.message)

    async def _finish(
        self, status: str, reason: str | None, details: dict[str, Any] | None = None
    ) -> Outcome:
        self.stop.set()
        if details is None and status != "completed":
            details = {"type": status, "reason": reason}
        self.outcome.status, self.outcome.reason = status, reason
        if self.persist is not None:  # durable first: a client that saw `response.done` finds it stored
            persist, outcome = self.persist, self.outcome
            await self.gate.call(lambda: persist(outcome))
        await self.gate.send(event("response.done", response=self._response_obj(status, details)))
        return self.outcome

    async def _function_calls(self, result: ChatResult) -> None:
        for call in result.tool_calls:
            item = {
                "id": new_id("item"),
                "object": "realtime.item",
                "type": "function_call",
                "status": "in_progress",
                "name": call.name,
                "call_id": call.id or new_id("call"),
                "arguments": "",
            }
            index = len(self.output)
            self.output.append(item)
            await self._add_item(item, index)
            base = {
                "response_id": self.id,
                "item_id": item["id"],
                "output_index": index,
                "call_id": item["call_id"],
            }
            await self.gate.send(
                event("response.function_call_arguments.delta", delta=call.arguments, **base)
            )
            await self.gate.send(
                event(
                    "response.function_call_arguments.done", arguments=call.arguments, name=call.name, **base
                )
            )
            item.update(status="completed", arguments=call.arguments)
            await self._item_done(item, index)
            self.outcome.calls.append(dict(item))

    async def _add_item(self, item: dict[str, Any], index: int) -> None:
        snapshot = json.loads(json.dumps(item))
        await self.gate.send(
            event("response.output_item.added", response_id=self.id, output_index=index, item=snapshot)
        )

        def add() -> dict[str, Any]:  # at adoption time for a speculative reply: after the user's item
            previous = self.conversation.add(item)
            return event("conversation.item.added", previous_item_id=previous, item=snapshot)

        await self.gate.do(add)

    async def _item_done(self, item: dict[str, Any], index: int) -> None:
        snapshot = json.loads(json.dumps(item))
        await self.gate.send(
            event("response.output_item.done", response_id=self.id, output_index=index, item=snapshot)
        )
        await self.gate.send(event("conversation.item.done", item=snapshot))


class _MessageOut:
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
        await self.r._add_item(self.item, self.index)
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
                r._tokens_out += 1
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
        await r._item_done(self.item, self.index)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")
