"""One realtime session: client events in, server events out, over the stages of this package.

The handler of client events never waits on a model: transcription and responses run as tasks, so frames
keep flowing into the VAD while the models work, and a barge-in is noticed within one frame.

The session routes events and holds the state its parts share; each part is driven alone in its tests:
turn taking (`turn_taking`), speculation, user audio items and their transcripts (`input_items`), item
edits (`item_events`), replies built (`reply_builder`) and run one at a time (`responses`), the
server-tool loop (`server_tools`) and the idle timeout (`idle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from pipelines.realtime.audio import InputDecoder, decode_b64
from pipelines.realtime.config import DEFAULT_INSTRUCTIONS, SessionConfig, apply_update
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.engines import Engines
from pipelines.realtime.idle import IdleTimer
from pipelines.realtime.input_buffer import AudioBuffer
from pipelines.realtime.input_items import InputItems
from pipelines.realtime.item_events import ItemEvents
from pipelines.realtime.persistence import ConversationSink, MemorySink, Record, RecordWriter, outcome_records
from pipelines.realtime.protocol import Emit, ProtocolError, error_event, event, new_id, parse_client_event
from pipelines.realtime.reply_builder import ReplyBuilder
from pipelines.realtime.response import Outcome, Response
from pipelines.realtime.responses import Responses
from pipelines.realtime.server_tools import ServerTools
from pipelines.realtime.speculation import Speculation, Speculator
from pipelines.realtime.tools import AgentRunner, NoTools, ToolRunner, transcription_prompt_of
from pipelines.realtime.turn_taking import TurnTaking
from pipelines.realtime.turns import Pausing, Resumed, SpeechStarted, SpeechStopped, TurnEvent

MIN_COMMIT_MS = 100  # OpenAI refuses to commit less than 100 ms of audio; so do we
CLOSE_TRANSCRIBE_S = 5.0  # how long a closing session waits for its last utterance's transcript


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
        self.inputs = InputItems(
            engines,
            self.conversation,
            send=self._send,
            persist=self._persist,
            wants_transcripts=lambda: self.config.transcription is not None,
            prompt=lambda: transcription_prompt_of(self.tools),
        )
        self.items = ItemEvents(
            self.conversation,
            send=self._send,
            persist=self._persist,
            input_format=lambda: self.config.input_format,
            transcribe=self.inputs.transcribe,
            stop_speaking=self._stop_speaking,
        )
        self.server_tools = ServerTools(
            self.tools,
            persist=self._persist,
            handoff=self._agent_switched,
            respond=self._respond_again,
        )
        self.replies = ReplyBuilder(
            engines,
            self.conversation,
            self.server_tools,
            self.slot,
            max_history_items=self.limits.max_history_items,
            lead_ms=self.limits.output_lead_ms,
            store=self._store_outcome,
        )
        self.speculator = Speculator(
            self.inputs.stt, lambda words: self.replies.speculative(self.config, words, self._send)
        )
        self.turns = self._make_turns()
        self.responses = Responses(
            send=self._send,
            build=self.replies.build,
            config=lambda: self.config,
            history=self.replies.history,
            last_user_text=self.conversation.last_user_text,
            pending=lambda: self.inputs.pending,
            after=self._after_response,
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._speech_item_id: str | None = None
        self.idle = IdleTimer(self._on_idle)
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
        await self.inputs.wait(CLOSE_TRANSCRIBE_S)
        self.inputs.cancel()
        self.idle.cancel()
        for task in self._background:
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
        await self.items.create(ev)

    async def _on_conversation_item_truncate(self, ev: BaseModel) -> None:
        await self.items.truncate(ev)

    async def _on_conversation_item_retrieve(self, ev: BaseModel) -> None:
        await self.items.retrieve(ev)

    async def _on_conversation_item_delete(self, ev: BaseModel) -> None:
        await self.items.delete(ev)

    async def _on_response_create(self, ev: BaseModel) -> None:
        if ev.response is None and self.server_tools.claim():  # type: ignore[attr-defined]
            return  # the response that follows the server's own tools: it runs (or starts) anyway
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
            self.idle.cancel()
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
        await self.inputs.commit(audio, item_id, spec)
        if respond:
            self._start_response(spec=spec, skip_if_silent=not force)

    def _prefill(self) -> None:
        self._spawn(self.replies.prefill(self.config))

    # --- responses -------------------------------------------------------------------------------

    def _start_response(
        self, *, overrides: Any = None, spec: Speculation | None = None, skip_if_silent: bool = False
    ) -> None:
        self.idle.cancel()
        self.responses.start(overrides=overrides, spec=spec, skip_if_silent=skip_if_silent)

    async def _interrupt(self, reason: str) -> None:
        await self.responses.interrupt(reason)

    async def _stop_speaking(self, item_id: str) -> None:
        """A truncate of the item being spoken stops its response first."""
        if self.response is not None and self.response.outcome.item_id == item_id:
            await self._interrupt("client_cancelled")

    async def _store_outcome(self, outcome: Outcome) -> None:
        """What a response said and called, written before its `response.done` goes out (durable)."""
        for record in outcome_records(outcome):
            self._persist(record)
        await self._writer.flush()

    async def _after_response(self, outcome: Outcome, response: Response) -> None:
        if self.server_tools.ran(outcome):
            self._spawn(self.server_tools.follow_up())
            return
        self.server_tools.settle()
        td = self.config.turn_detection
        if td is not None and td.idle_timeout_ms and outcome.status == "completed":
            unplayed_ms = response.playback.sent_ms - response.playback.played_ms()
            self.idle.arm(unplayed_ms=unplayed_ms, idle_timeout_ms=td.idle_timeout_ms)

    async def _agent_switched(self, runner: AgentRunner) -> None:
        """A handoff: later replies use the new agent's instructions, and the client is told."""
        self.config = replace(self.config, instructions=runner.instructions or self.config.instructions)
        await self._send(event("session.updated", session=self.config.to_dict(self.id)))

    def _respond_again(self) -> None:
        """After server tools: the next response speaks their outputs (unless one already runs)."""
        if not self.busy:
            self._start_response()

    async def _on_idle(self) -> None:
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

    def _persist(self, record: Record) -> None:
        self._writer.put(record)
