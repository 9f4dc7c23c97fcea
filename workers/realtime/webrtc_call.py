"""One WebRTC call: a peer connection whose audio and `oai-events` data channel drive a realtime session.

The session is the same `RealtimeSession` a WebSocket drives, through the same event interface:
- the browser's Opus is decoded by aiortc, resampled to 24 kHz PCM and handed to the session as
  `input_audio_buffer.append` events;
- the session's `response.output_audio.delta` events are not sent anywhere: their audio goes to a paced
  track (`SpeechTrack`) instead, as OpenAI's WebRTC endpoint does; every other server event goes to the
  data channel (and to any side-band WebSocket watching the call);
- a barge-in (`speech_started` with `interrupt_response`) or `output_audio_buffer.clear` cuts the track
  at once, and the assistant item is truncated to what the track really sent, by the same
  `conversation.item.truncate` a WebSocket client would send with its own playback position.

All client input (data channel, audio, side-band, our own truncations) goes through one queue into
`session.handle`, so the session sees one event at a time, as on the WebSocket path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from pipelines.realtime.playout import FRAME_MS, RATE, Cut, Playout, StereoTo24k, TwoX, up_to_48k
from pipelines.realtime.protocol import new_id
from pipelines.realtime.session import RealtimeSession
from workers.realtime.webrtc_media import PacedAudioTrack, audible, prompt_audio

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
SessionFactory = Callable[[Emit], RealtimeSession]
#: Input frames queued for the session beyond this (2 s of audio) are dropped, not buffered forever.
MAX_BACKLOG_FRAMES = 2000 // FRAME_MS
#: Server events held for a data channel that is not open yet; beyond this the oldest go.
MAX_PENDING_EVENTS = 500
#: Client events whose audio format a WebRTC call ignores: the tracks carry Opus whatever is asked.
_FORMAT_KEYS = ("format",)


class SpeechTrack(PacedAudioTrack):
    """The call's outgoing audio: 20 ms frames from a `Playout`, paced to real time, silence when idle.

    With debug logging on, it logs per response when its audio reached the call, when its first frame
    and its first audible frame went to the encoder (`webrtc-media {json}`, monotonic seconds: the same
    clock as any other process on the host), which is how `bench/realtime.py` splits the media path."""

    def __init__(self, playout: Playout, call_id: str = "") -> None:
        super().__init__(2 * RATE)  # 48 kHz, Opus's own rate: see `TwoX` for why not 24
        self.playout = playout
        self.call_id = call_id
        self._to_48k = TwoX()
        self._trace: dict[str, dict[str, float]] = {}  # response -> times; filled only when debugging
        self._traced: set[str] = set()  # responses already noted: each is logged once

    def fed(self, response_id: str) -> None:
        """The session produced audio for `response_id` (noted once per response, when debugging)."""
        if response_id not in self._traced and log.isEnabledFor(logging.DEBUG):
            self._traced.add(response_id)
            if len(self._traced) > 64:  # a long call: forget the oldest (ids are never reused)
                self._traced.clear()
                self._traced.add(response_id)
            if len(self._trace) > 32:  # responses cut before they were heard
                del self._trace[next(iter(self._trace))]
            self._trace[response_id] = {"fed": time.monotonic()}

    def next_samples(self) -> bytes:
        frame = self.playout.next_frame()
        if self._trace:
            self._note(frame)
        return up_to_48k(self._to_48k, frame)

    def _note(self, frame: bytes) -> None:
        response = self.playout.playing
        times = self._trace.get(response) if response is not None else None
        if times is None:
            return
        times.setdefault("out", time.monotonic())
        if audible(frame):
            times["audible"] = time.monotonic()
            del self._trace[str(response)]
            log.debug("webrtc-media %s", json.dumps({"call": self.call_id, "response": response, **times}))


class Call:
    """A live call. `answer(offer)` sets up the peer connection; `run()` lives until the call ends."""

    def __init__(
        self,
        *,
        owner: str,
        make_session: SessionFactory,
        configuration: RTCConfiguration,
        ice_timeout_s: float,
        idle_timeout_s: float = 300.0,
    ) -> None:
        self.id = new_id("rtc")
        self.owner = owner
        self.ice_timeout_s = ice_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.pc = RTCPeerConnection(configuration=configuration)
        self.playout = Playout(self._send_event)
        self.track = SpeechTrack(self.playout, self.id)
        self.session = make_session(self._emit)
        self.inbox: asyncio.Queue[str | Cut | None] = asyncio.Queue()
        self.watchers: set[asyncio.Queue[str | None]] = set()
        self.ended = asyncio.Event()
        self.connected = asyncio.Event()
        self.end_reason = ""
        self._channel: Any = None
        self._pending: list[str] = []  # events produced before the client's data channel opened
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_input = time.monotonic()
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_state)

    # --- signalling ------------------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        prompt_audio(self.pc)  # the caller's speech reaches the session as it arrives, not 80 ms late
        self.pc.addTrack(self.track)  # fills the offer's audio transceiver: sendrecv
        await self.pc.setLocalDescription(await self.pc.createAnswer())  # gathers host candidates
        return str(self.pc.localDescription.sdp)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self.end(f"connection {state}")

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != "oai-events":
            return
        self._channel = channel

        def opened() -> None:
            for text in self._pending:
                channel.send(text)
            self._pending.clear()

        channel.on("open", opened)
        channel.on("message", self._on_message)
        channel.on("close", lambda: self.end("data channel closed"))
        if channel.readyState == "open":
            opened()

    def _on_message(self, message: str | bytes) -> None:
        raw = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        self.submit(raw)

    def submit(self, raw: str) -> None:
        """A client event from the data channel or a side-band socket."""
        self._last_input = time.monotonic()
        self.inbox.put_nowait(_without_formats(raw))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read_audio(track))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        """Browser audio -> 24 kHz PCM -> `input_audio_buffer.append`, 20 ms at a time."""
        converter: StereoTo24k | None = None
        while not self.ended.is_set():
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if converter is None or converter.source_rate != frame.sample_rate:
                converter = StereoTo24k(frame.sample_rate)
            pcm = converter.convert(frame.to_ndarray(), len(frame.layout.channels))
            if pcm and self.inbox.qsize() > MAX_BACKLOG_FRAMES:
                log.warning("call %s: input backlog, audio frame dropped", self.id)
            elif pcm:
                self._last_input = time.monotonic()
                audio = base64.b64encode(pcm).decode("ascii")
                self.inbox.put_nowait(f'{{"type":"input_audio_buffer.append","audio":"{audio}"}}')

    # --- server events ---------------------------------------------------------------------------

    async def _emit(self, data: dict[str, Any]) -> None:
        """The session's events: audio to the track, the rest to the data channel and watchers."""
        kind = data.get("type")
        if kind == "response.output_audio.delta":
            self.track.fed(data["response_id"])
            self.playout.feed(data["response_id"], data["item_id"], base64.b64decode(data["delta"]))
            return
        if kind == "output_audio_buffer.cleared":
            return  # the session's own guess; the playout says what was really cut (see `_cut`)
        if kind == "response.output_audio.done":
            self.playout.finish(data["response_id"])
        elif kind == "response.done":
            self.playout.finish(data["response"]["id"])
        elif kind == "input_audio_buffer.speech_started":
            td = self.session.config.turn_detection
            if td is not None and td.interrupt_response:
                self._send_event(data)
                self._cut()
                return
        self._send_event(data)

    def _cut(self) -> None:
        """Stop the track now and have the session keep only what it sent of the interrupted item."""
        cut = self.playout.clear()
        if cut is not None:  # truncated after the session has handled the interruption (see `_truncate`)
            self.inbox.put_nowait(cut)

    def _truncate(self, cut: Cut) -> str | None:
        """The `conversation.item.truncate` a client would send, at what the track really played.

        Built only once the session has cancelled the response, because only then does the item know
        its audio spans (and so how far a cut may go)."""
        entry = self.session.conversation.get(cut.item_id)
        if entry is None or entry.item.get("role") != "assistant":
            return None
        heard_ms = int(min(cut.played_ms, entry.audio_ms))
        truncate = {
            "type": "conversation.item.truncate",
            "event_id": new_id("event"),
            "item_id": cut.item_id,
            "content_index": 0,
            "audio_end_ms": heard_ms,
        }
        return json.dumps(truncate)

    def _send_event(self, data: dict[str, Any]) -> None:
        text = json.dumps(data)
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            with contextlib.suppress(Exception):  # closing under us: the call is ending anyway
                channel.send(text)
        elif channel is None or channel.readyState == "connecting":
            if len(self._pending) >= MAX_PENDING_EVENTS:  # a client that never opens the channel
                del self._pending[0]
            self._pending.append(text)
        for queue in list(self.watchers):
            queue.put_nowait(text)

    # --- lifetime --------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()
            self.inbox.put_nowait(None)

    async def abort(self) -> None:
        """Undo `answer` for a call that will never run (the offer could not be answered)."""
        self.ended.set()
        self.track.stop()
        await self.pc.close()

    async def run(self) -> None:
        """Serve the call until hangup, a closed connection, ICE never completing, or idleness."""
        await self.session.start(owner=self.owner)
        self._spawn(self._watchdog())
        try:
            while (raw := await self.inbox.get()) is not None:
                if isinstance(raw, Cut):
                    raw = self._truncate(raw)
                    if raw is None:
                        continue
                elif '"output_audio_buffer.clear"' in raw[:200]:
                    self._cut()  # before the session cancels, so no more audio reaches the track
                await self.session.handle(raw)
        finally:
            self.end(self.end_reason or "ended")
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.track.stop()
            await self.session.close()
            await self.pc.close()
            for queue in list(self.watchers):
                queue.put_nowait(None)

    async def _watchdog(self) -> None:
        try:
            await asyncio.wait_for(self.connected.wait(), self.ice_timeout_s)
        except TimeoutError:
            self.end("ice timeout")
            return
        while not self.ended.is_set():
            await asyncio.sleep(min(5.0, self.idle_timeout_s))
            if time.monotonic() - self._last_input > self.idle_timeout_s:
                self.end("idle timeout")


def _without_formats(raw: str) -> str:
    """Drop audio formats from a `session.update`: a call's audio is Opus on the tracks, and the
    session must keep reading the 24 kHz PCM this module feeds it (an SDK asking for `audio/pcm` at
    24 kHz, as the JS SDK does, changes nothing either way)."""
    if '"session.update"' not in raw:
        return raw
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    audio = (data.get("session") or {}).get("audio") if isinstance(data, dict) else None
    if not isinstance(audio, dict):
        return raw
    for direction in ("input", "output"):
        part = audio.get(direction)
        if isinstance(part, dict):
            for key in _FORMAT_KEYS:
                part.pop(key, None)
    return json.dumps(data)
