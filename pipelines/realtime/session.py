"""One realtime session: client events in, server events out, over the stages of this package.

The handler of client events never waits on a model: transcription and responses run as tasks, so frames
keep flowing into the VAD while the models work, and a barge-in is noticed within one frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from pipelines.providers.base import ChatMessage
from pipelines.realtime.audio import InputDecoder, decode_b64
from pipelines.realtime.config import (
    DEFAULT_INSTRUCTIONS,
    SessionConfig,
    apply_update,
)
from pipelines.realtime.conversation import Conversation, item_text
from pipelines.realtime.engines import Engines
from pipelines.realtime.gate import Gate
from pipelines.realtime.input_buffer import AudioBuffer
from pipelines.realtime.persistence import ConversationSink, MemorySink, Record, RecordWriter, record_of
from pipelines.realtime.protocol import ProtocolError, error_event, event, new_id, parse_client_event
from pipelines.realtime.response import Outcome, Response
from pipelines.realtime.responses import Responses
from pipelines.realtime.speculation import Speculation, Speculator
from pipelines.realtime.tools import AgentRunner, NoTools, ToolRunner, server_tool_names
from pipelines.realtime.turn_taking import TurnTaking
from pipelines.realtime.turns import Pausing, Resumed, SpeechStarted, SpeechStopped, TurnEvent

log = logging.getLogger(__name__)
Emit = Callable[[dict[str, Any]], Awaitable[None]]

MIN_COMMIT_MS = 100  # OpenAI refuses to commit less than 100 ms of audio; so do we
CLOSE_TRANSCRIBE_S = 5.0  # how long a closing session waits for its last utterance's transcript
STT_TAIL_SAMPLES = 4_000  # 250 ms of silence after the words for Whisper (see `_stt`)


@dataclass(frozen=True)
class SessionLimits:
    max_buffer_ms: int = 120_000
    output_lead_ms: float = 1000.0
    max_history_items: int = 12  # items of history given to the model with each response
    speculate_after_ms: int = 64  # 2 silent frames of 32 ms (see docs/scaling.md, "first audio")


class RealtimeSession:
    def __init__(
        self,
        engines: Engines,
        emit: Emit,
        *,
        config: SessionConfig | None = None,
        sink: ConversationSink | None = None,
        tools: ToolRunner | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        self.id = new_id("sess")
        self.engines = engines
        self._emit = emit
        self.config = config or SessionConfig()
        self.limits = limits or SessionLimits()
        self.sink: ConversationSink = sink or MemorySink()
        self._writer = RecordWriter(self.sink)
        self.tools: ToolRunner = tools or NoTools()
        self.conversation = Conversation()
        self.buffer = AudioBuffer(self.limits.max_buffer_ms)
        self.decoder = InputDecoder(self.config.input_format)
        self.slot = engines.take_slot()  # this session's LLM context, for its prefills and replies
        self.speculator = Speculator(self._stt, self._speculative_reply)
        self.turns = self._make_turns()
        self.responses = Responses(
            send=self._send,
            build=self._new_response,
            config=lambda: self.config,
            history=lambda c: self.conversation.to_messages(c.instructions, self.limits.max_history_items),
            last_user_text=lambda: _last_user_text(self.conversation),
            pending=lambda: self._transcribing,
            after=self._after_response,
        )
        self._transcribing: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._speech_item_id: str | None = None
        self._idle_timer: asyncio.Task[None] | None = None
        self.conversation_id: str | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, owner: str = "realtime", agent: str = "Assistant") -> None:
        if isinstance(self.tools, AgentRunner):  # the agent's instructions, unless a preset gave others
            agent = self.tools.agent_name
            if self.config.instructions == DEFAULT_INSTRUCTIONS and self.tools.instructions:
                self.config = replace(self.config, instructions=self.tools.instructions)
        self.conversation_id = await asyncio.to_thread(self.sink.open, self.id, owner=owner, agent=agent)
        await self._send(event("session.created", session=self.config.to_dict(self.id)))
        self._prefill()  # the instructions into the KV cache now, not while the first turn waits on them

    async def close(self) -> None:
        """Stop all work, but let the last words be transcribed and everything said be stored."""
        if self.turns is not None:
            self.turns.close()
        await self.speculator.drop()
        await self._interrupt("client_cancelled")
        if self._transcribing:
            await asyncio.wait(list(self._transcribing), timeout=CLOSE_TRANSCRIBE_S)
        for task in [*self._transcribing, *self._background, self._idle_timer]:
            if task is not None:
                task.cancel()
        await self._writer.close()
        await asyncio.to_thread(self.sink.close)
        self.engines.release_slot(self.slot)

    @property
    def busy(self) -> bool:
        """A response is running or about to (waiting on the transcription it answers)."""
        return self.responses.busy

    @property
    def response(self) -> Response | None:
        """The response being spoken now, if any."""
        return self.responses.current

    async def _send(self, data: dict[str, Any]) -> None:
        await self._emit(data)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- client events ---------------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        """Handle one client message; a bad one gets an `error` event and the session carries on."""
        try:
            ev = parse_client_event(raw)
            await getattr(self, "_on_" + ev.type.replace(".", "_"))(ev)  # type: ignore[attr-defined]
        except ProtocolError as err:
            await self._send(error_event(err))

    async def _on_session_update(self, ev: BaseModel) -> None:
        await self._reconfigure(apply_update(self.config, ev.session))  # type: ignore[attr-defined]
        await self._send(event("session.updated", session=self.config.to_dict(self.id)))

    async def _reconfigure(self, new: SessionConfig) -> None:
        """Adopt `new`, rebuilding the decoder and the turn taking only where they changed (kinds of
        session that read their update differently share this)."""
        old, self.config = self.config, new
        if new.instructions != old.instructions and not len(self.conversation):
            self._prefill()
        if new.input_format != old.input_format:
            self.decoder = InputDecoder(new.input_format)
        if new.turn_detection != old.turn_detection:
            await self.speculator.drop()
            if self.turns is not None:
                self.turns.close()
            self.turns = self._make_turns()

    async def _on_input_audio_buffer_append(self, ev: BaseModel) -> None:
        samples = self.decoder.decode(decode_b64(ev.audio))  # type: ignore[attr-defined]
        if not self.buffer.append(samples):
            await self._send(
                error_event(
                    ProtocolError("Input audio buffer is full; oldest audio dropped.", code="buffer_full")
                )
            )
        if self.turns is None:
            return
        await self.turns.feed(samples)
        td = self.config.turn_detection
        if td is not None and not self.turns.speaking:
            self.buffer.keep_from_ms(self.buffer.end_ms - td.prefix_padding_ms)

    async def _on_input_audio_buffer_commit(self, ev: BaseModel) -> None:
        if self.buffer.duration_ms < MIN_COMMIT_MS:
            raise ProtocolError(
                f"Buffer too small: {self.buffer.duration_ms} ms; commit needs at least {MIN_COMMIT_MS} ms.",
                code="input_audio_buffer_commit_empty",
                event_id=ev.event_id,  # type: ignore[attr-defined]
            )
        item_id = self._speech_item_id or new_id("item")
        self._speech_item_id = None
        if self.turns is not None:
            self.turns.reset()
        await self.speculator.drop()
        await self._commit(self.buffer.take(), item_id, respond=False)

    async def _on_input_audio_buffer_clear(self, ev: BaseModel) -> None:
        self.buffer.clear()
        self._speech_item_id = None
        if self.turns is not None:
            self.turns.reset()
        await self.speculator.drop()
        await self._send(event("input_audio_buffer.cleared"))

    async def _on_conversation_item_create(self, ev: BaseModel) -> None:
        item = ev.item.model_dump(exclude_none=True)  # type: ignore[attr-defined]
        if item.get("type") not in ("message", "function_call", "function_call_output"):
            raise ProtocolError(f"Unsupported item type {item.get('type')!r}.", param="item.type")
        item.setdefault("id", new_id("item"))
        item.update(object="realtime.item", status="completed")
        audio = _input_audio(item)
        previous = self.conversation.add(item, ev.previous_item_id)  # type: ignore[attr-defined]
        await self._send(event("conversation.item.added", previous_item_id=previous, item=item))
        if audio is not None:
            samples = InputDecoder(self.config.input_format).decode(decode_b64(audio))
            self._track(self._transcribe(item, samples, None))
            return
        await self._send(event("conversation.item.done", previous_item_id=previous, item=item))
        self._persist_item(item)

    async def _on_conversation_item_truncate(self, ev: BaseModel) -> None:
        item_id = ev.item_id  # type: ignore[attr-defined]
        if self.response is not None and self.response.outcome.item_id == item_id:
            await self._interrupt("client_cancelled")
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

    async def _on_conversation_item_retrieve(self, ev: BaseModel) -> None:
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

    async def _on_conversation_item_delete(self, ev: BaseModel) -> None:
        self.conversation.delete(ev.item_id)  # type: ignore[attr-defined]
        await self._send(event("conversation.item.deleted", item_id=ev.item_id))  # type: ignore[attr-defined]

    async def _on_response_create(self, ev: BaseModel) -> None:
        if self.busy:
            raise ProtocolError(
                "Conversation already has an active response.",
                code="conversation_already_has_active_response",
                event_id=ev.event_id,  # type: ignore[attr-defined]
            )
        self._start_response(overrides=ev.response)  # type: ignore[attr-defined]

    async def _on_response_cancel(self, ev: BaseModel) -> None:
        if not self.busy:
            raise ProtocolError(
                "There is no active response to cancel.",
                code="response_cancel_not_active",
                event_id=ev.event_id,  # type: ignore[attr-defined]
            )
        await self._interrupt("client_cancelled")

    async def _on_output_audio_buffer_clear(self, ev: BaseModel) -> None:
        response = self.response
        await self._interrupt("client_cancelled")
        if response is not None:
            await self._send(event("output_audio_buffer.cleared", response_id=response.id))

    # --- turn detection --------------------------------------------------------------------------

    def _make_turns(self) -> TurnTaking | None:
        td = self.config.turn_detection
        if td is None:
            return None
        return TurnTaking(
            self.engines.make_vad(),
            td,
            self._on_turn,
            audio=self.buffer.peek,
            transcript=self.speculator.transcript,
            model=self.engines.turn_model if td.type == "semantic_vad" else None,
            speculate_after_ms=self.limits.speculate_after_ms,
        )

    async def _on_turn(self, te: TurnEvent) -> None:
        td = self.config.turn_detection
        assert td is not None
        if isinstance(te, SpeechStarted):
            self._speech_item_id = new_id("item")
            self.buffer.keep_from_ms(te.audio_start_ms - td.prefix_padding_ms)
            self._cancel_idle_timer()
            await self.speculator.drop()
            await self._send(
                event(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=te.audio_start_ms,
                    item_id=self._speech_item_id,
                )
            )
            if td.interrupt_response:
                await self._interrupt("turn_detected")
            self._prefill()
        elif isinstance(te, Pausing):
            respond = td.create_response and not self.busy
            if respond or td.type == "semantic_vad":  # semantic_vad reads the words even with no reply
                self.speculator.start(self.buffer.peek(), reply=respond)
        elif isinstance(te, Resumed):
            await self.speculator.drop()
        elif isinstance(te, SpeechStopped):
            item_id = self._speech_item_id or new_id("item")
            self._speech_item_id = None
            await self._send(
                event("input_audio_buffer.speech_stopped", audio_end_ms=te.audio_end_ms, item_id=item_id)
            )
            spec = self.speculator.take()
            respond = td.create_response and not self.busy
            if spec is not None and spec.replying != respond:  # a reply nobody wants, or none prepared
                await spec.cancel()
                spec = None
            await self._commit(self.buffer.take(), item_id, respond=respond, spec=spec)

    # --- committing and transcribing -------------------------------------------------------------

    async def _commit(
        self,
        audio: np.ndarray,
        item_id: str,
        *,
        respond: bool,
        spec: Speculation | None = None,
        force: bool = False,
    ) -> None:
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
        self._track(self._transcribe(item, audio, spec))
        if respond:
            self._start_response(spec=spec, skip_if_silent=not force)

    def _track(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._transcribing.add(task)
        task.add_done_callback(self._transcribing.discard)

    async def _transcribe(self, item: dict[str, Any], audio: np.ndarray, spec: Speculation | None) -> None:
        text: str | None = None
        if spec is not None:
            try:
                assert spec.task is not None
                await asyncio.shield(spec.task)
                text = spec.transcript
            except Exception:  # the speculation failed: transcribe again the ordinary way
                text = None
        content = item["content"][0]
        try:
            if text is None:
                text = await self._stt(audio)
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
            if self.config.transcription is not None:
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

    async def _stt(self, audio: np.ndarray) -> str:
        """Whisper hears the words with a quarter second of silence after them: a speculation cuts the
        audio ~0.1 s into the pause, and cut that short Whisper drops the closing "?" or "." that
        semantic_vad reads as a finished sentence (piper questions, bench: same words either way)."""
        if len(audio) < 1600:
            return ""
        padded = np.concatenate([audio, np.zeros(STT_TAIL_SAMPLES, dtype=audio.dtype)])
        return await asyncio.to_thread(self.engines.transcribe, padded)

    def _prefill(self) -> None:
        """While the user speaks, have the model read the conversation so far (a hint; see `prefill`)."""
        messages = self.conversation.to_messages(self.config.instructions, self.limits.max_history_items)

        async def run() -> None:
            try:
                await asyncio.to_thread(self.engines.prefill, messages, self.slot)
            except Exception:  # only a head start lost; the reply evaluates the prompt anyway
                log.exception("prefill failed")

        self._spawn(run())

    # --- speculation -----------------------------------------------------------------------------

    def _speculative_reply(self, transcript: str) -> Response:
        messages = [
            *self.conversation.to_messages(self.config.instructions, self.limits.max_history_items),
            ChatMessage(role="user", content=transcript),
        ]
        return self._new_response(self.config, messages, Gate(self._send, open_=False))

    # --- responses -------------------------------------------------------------------------------

    def _new_response(self, config: SessionConfig, messages: list[ChatMessage], gate: Gate) -> Response:
        # an agent's tools are called when its routes say so (`Plan`); the model is never offered them
        agent = self.tools if isinstance(self.tools, AgentRunner) else None
        tools = [*config.tools] if agent else [*config.tools, *self.tools.definitions()]
        plan = agent.plan(messages) if agent and config.tool_choice != "none" else None
        return Response(
            engines=self.engines,
            config=config,
            conversation=self.conversation,
            messages=messages,
            tools=list(tools),
            gate=gate,
            lead_ms=self.limits.output_lead_ms,
            plan=plan,
            guard=agent.guardrails if agent else None,
            persist=self._store_outcome,
            slot=self.slot,
        )

    def _start_response(
        self, *, overrides: Any = None, spec: Speculation | None = None, skip_if_silent: bool = False
    ) -> None:
        self._cancel_idle_timer()
        self.responses.start(overrides=overrides, spec=spec, skip_if_silent=skip_if_silent)

    async def _interrupt(self, reason: str) -> None:
        await self.responses.interrupt(reason)

    async def _store_outcome(self, outcome: Outcome) -> None:
        """What a response said and called, written before its `response.done` goes out (durable)."""
        if outcome.item_id is not None:
            self._persist(
                Record(
                    "assistant",
                    outcome.item_id,
                    outcome.heard,
                    {
                        "generated": outcome.text,
                        "interrupted": outcome.status == "cancelled",
                        "reason": outcome.reason,
                        "response_id": outcome.response_id,
                        "status": outcome.status,
                    },
                )
            )
        if outcome.guardrail is not None:
            g = outcome.guardrail
            self._persist(
                Record(
                    "guardrail", new_id("item"), g.message, {"kind": g.kind, "name": g.name, "agent": g.agent}
                )
            )
        for call in outcome.calls:
            self._persist(
                Record(
                    "function_call", call["id"], "", {k: call[k] for k in ("name", "call_id", "arguments")}
                )
            )
        await self._writer.flush()

    async def _after_response(self, outcome: Outcome, response: Response) -> None:
        server = server_tool_names(self.tools)
        local = [c for c in outcome.calls if c["name"] in server]
        if local and outcome.status == "completed":
            self._spawn(self._run_server_tools(local))
            return
        td = self.config.turn_detection
        if td is not None and td.idle_timeout_ms and outcome.status == "completed":
            wait_s = (
                max(0.0, response.playback.sent_ms - response.playback.played_ms()) + td.idle_timeout_ms
            ) / 1000
            self._idle_timer = asyncio.ensure_future(self._idle_timeout(wait_s))

    async def _run_server_tools(self, calls: list[dict[str, Any]]) -> None:
        agent = self.tools.agent_name if isinstance(self.tools, AgentRunner) else None
        for call in calls:
            output = await self.tools.run(call["name"], call["arguments"])
            item = {
                "id": new_id("item"),
                "object": "realtime.item",
                "type": "function_call_output",
                "status": "completed",
                "call_id": call["call_id"],
                "output": output,
            }
            previous = self.conversation.add(item)
            await self._send(event("conversation.item.added", previous_item_id=previous, item=item))
            await self._send(event("conversation.item.done", previous_item_id=previous, item=item))
            self._persist_item(item)
        if isinstance(self.tools, AgentRunner) and self.tools.agent_name != agent:
            await self._agent_switched(agent, self.tools)
        if not self.busy:
            self._start_response()

    async def _agent_switched(self, old: str | None, runner: AgentRunner) -> None:
        """A handoff: later replies use the new agent's instructions; the client and the store are told."""
        self.config = replace(self.config, instructions=runner.instructions or self.config.instructions)
        self._persist(
            Record("agent", new_id("item"), runner.agent_name, {"from": old, "to": runner.agent_name})
        )
        await self._send(event("session.updated", session=self.config.to_dict(self.id)))

    async def _idle_timeout(self, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        if self.busy or (self.turns is not None and self.turns.speaking):
            return
        end = self.buffer.end_ms
        item_id = new_id("item")
        await self._send(
            event(
                "input_audio_buffer.timeout_triggered", audio_start_ms=end, audio_end_ms=end, item_id=item_id
            )
        )
        await self._commit(self.buffer.take(), item_id, respond=True, force=True)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    # --- persistence -----------------------------------------------------------------------------

    def _persist_item(self, item: dict[str, Any]) -> None:
        record = record_of(item)
        if record is not None:
            self._persist(record)

    def _persist(self, record: Record) -> None:
        self._writer.put(record)


def _last_user_text(conversation: Conversation) -> str:
    for item in reversed(list(conversation)):
        if item.get("type") == "message" and item.get("role") == "user":
            return item_text(item)
        if item.get("type") == "function_call_output":
            return item.get("output") or " "
    return ""


def _input_audio(item: dict[str, Any]) -> str | None:
    for c in item.get("content") or []:
        if c.get("type") == "input_audio" and c.get("audio"):
            audio = c.pop("audio")
            return str(audio)
    return None
