"""One realtime session per transport, driven the same way, so that a turn is measured alike on each.

- `websocket`: the `openai` client straight to the pool (`websocket_base_url=ws://<pool>/v1`);
- `gateway`: the `openai` client given the API's `base_url` only (it derives `/v1/realtime` on the API
  origin, which relays to the least loaded pool process);
- `webrtc`: an aiortc call (`tests.workers.realtime.webrtc_peer.Peer`, the browser's part) posted to the
  API's `POST /v1/realtime/calls`: events on the `oai-events` data channel, audio on Opus tracks.

Voice-to-voice is one span on every transport: from the moment the last speech sample leaves the client
to the moment the reply's first audible 20 ms (RMS > 0.01) is there to play:
- websocket / gateway: the first `response.output_audio.delta`'s arrival plus the offset of the first
  audible 20 ms inside the reply's audio (a client plays deltas as they come, and a reply starts quiet);
- webrtc: the first audible frame decoded from the server's track (the quiet start is on the track).
Every event is stamped when it arrives (a reader task per socket), not when the benchmark looks at it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.realtime.playout import FRAME_BYTES, SILENCE, Pacer
from workers.realtime.webrtc_media import audible

Event = tuple[float, dict[str, Any]]  # (monotonic arrival time, server event)


@dataclass
class Sample:
    """One answered turn (times in ms, monotonic instants in s)."""

    transport: str
    v2v: float  # last speech sample sent -> first audible reply audio at the client
    media: float | None  # the reply's first transcript delta -> its first audible audio
    after_end: float | None  # the turn end the server declared (audio_end_ms) -> first audible audio
    end_seen: float | None  # that turn end -> `speech_stopped` at the client (input path + detection)
    first_delta: float | None = None  # WebSocket: last speech sample -> first audio delta (issue 12's)
    response_id: str = ""
    heard: float = 0.0  # webrtc: when the first audible frame was decoded
    loud_packet: float | None = None  # webrtc: when its first loud RTP packet arrived


class Link:
    """A session over one transport: paced audio in, stamped events out."""

    name = ""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def say(self, pcm24: bytes) -> float:
        """Play 24 kHz PCM16 at real-time pace; the monotonic time its last sample went out."""
        raise NotImplementedError

    def wall_of(self, audio_ms: float) -> float | None:
        """When the client sent the input audio at `audio_ms` of the session's input timeline."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """An open microphone while the reply is awaited: silence keeps flowing."""
        yield

    async def settle(self, seen: set[str]) -> None:
        """The reply is over for the user too (WebRTC: the server's track stopped playing it)."""

    def first_audible(self, after: float, audio: AudioSeen) -> float | None:
        """When the reply's first audible 20 ms was there to play (`audio`: its deltas, if any)."""
        return audio.audible_at()

    async def next_event(self, timeout: float) -> Event:
        return await asyncio.wait_for(self.events.get(), timeout)

    def discard(self) -> None:
        """Forget events nobody waited for (the tail of the previous turn)."""
        while not self.events.empty():
            self.events.get_nowait()

    async def configure(self, session: dict[str, Any]) -> None:
        await self.send({"type": "session.update", "session": session})
        while (await self.next_event(30))[1].get("type") != "session.updated":
            pass

    async def send(self, event: dict[str, Any]) -> None:
        raise NotImplementedError


class AudioSeen:
    """The first response's audio deltas as they arrived (WebSocket transports)."""

    def __init__(self) -> None:
        self.first_at: float | None = None
        self.response_id = ""
        self.pcm = b""

    def add(self, at: float, ev: dict[str, Any]) -> None:
        if self.first_at is None:
            self.first_at, self.response_id = at, ev.get("response_id", "")
        if ev.get("response_id", "") == self.response_id:
            self.pcm += base64.b64decode(ev["delta"])

    def audible_at(self) -> float | None:
        if self.first_at is None:
            return None
        for i in range(0, len(self.pcm), FRAME_BYTES):
            if audible(self.pcm[i : i + FRAME_BYTES]):
                return self.first_at + i / FRAME_BYTES * 0.020
        return None


class WsLink(Link):
    """`websocket` (client options `websocket_base_url=`) or `gateway` (`base_url=` only)."""

    def __init__(self, name: str, key: str, **client: str) -> None:
        super().__init__()
        self.name, self.key, self.client_options = name, key, client
        self.pacer = Pacer()
        self.sent_at: list[float] = []  # when each 20 ms chunk went out
        self._stack = contextlib.AsyncExitStack()
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(api_key=self.key, **self.client_options)  # type: ignore[arg-type]
        self.conn = await self._stack.enter_async_context(client.realtime.connect(model="voicechain-local"))
        self._reader = asyncio.create_task(self._read())
        while (await self.next_event(30))[1].get("type") != "session.created":
            pass

    async def _read(self) -> None:
        with contextlib.suppress(Exception):  # the socket closed: no more events
            while True:
                raw = await self.conn.recv_bytes()
                self.events.put_nowait((time.monotonic(), json.loads(raw)))

    async def send(self, event: dict[str, Any]) -> None:
        await self.conn.send_raw(json.dumps(event))

    async def _chunk(self, pcm: bytes) -> None:
        await self.pacer.tick()
        audio = base64.b64encode(pcm).decode()
        await self.conn.send_raw(f'{{"type":"input_audio_buffer.append","audio":"{audio}"}}')
        self.sent_at.append(time.monotonic())

    async def say(self, pcm24: bytes) -> float:
        for i in range(0, len(pcm24), FRAME_BYTES):
            await self._chunk(pcm24[i : i + FRAME_BYTES])
        return self.sent_at[-1]

    def wall_of(self, audio_ms: float) -> float | None:
        index = int(audio_ms // 20)
        return self.sent_at[index] if 0 <= index < len(self.sent_at) else None

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        async def silence() -> None:
            while True:
                await self._chunk(SILENCE)

        filler = asyncio.create_task(silence())
        try:
            yield
        finally:
            filler.cancel()
            await asyncio.gather(filler, return_exceptions=True)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._stack.aclose()


class RtcLink(Link):
    """A WebRTC call through `calls_url`; the microphone paces itself and sends silence when idle."""

    name = "webrtc"

    def __init__(self, calls_url: str, key: str) -> None:
        super().__init__()
        self.calls_url, self.key = calls_url, key

    async def open(self) -> None:
        from tests.workers.realtime.webrtc_peer import Peer

        self.peer = Peer(on_event=self.events.put_nowait)
        response = await self.peer.call(self.calls_url, self.key)
        if response.status_code != 201:
            raise RuntimeError(f"call refused: {response.status_code} {response.text}")
        await asyncio.wait_for(self.peer.opened.wait(), 15)
        while (await self.next_event(30))[1].get("type") != "session.created":
            pass

    async def send(self, event: dict[str, Any]) -> None:
        self.peer.send(event)

    async def say(self, pcm24: bytes) -> float:
        import soxr

        samples = np.frombuffer(pcm24, dtype="<i2").astype(np.float32) / 32768
        mic48 = soxr.resample(samples, 24_000, 48_000)
        self.peer.mic.say((np.clip(mic48, -1, 1) * 32767).astype(np.int16))
        while self.peer.mic.busy:
            await asyncio.sleep(0.005)
        return self.peer.mic.last_speech_at

    def wall_of(self, audio_ms: float) -> float | None:
        sent = self.peer.mic.sent_at
        index = int(audio_ms // 20)
        return sent[index] if 0 <= index < len(sent) else None

    async def settle(self, seen: set[str]) -> None:
        if not seen & {"output_audio_buffer.started", "response.output_audio.done"}:
            return  # a reply without audio: nothing plays
        while not seen & {"output_audio_buffer.stopped", "output_audio_buffer.cleared"}:
            seen.add((await self.next_event(30))[1].get("type", ""))

    def first_audible(self, after: float, audio: AudioSeen) -> float | None:
        return self.peer.heard.first_speech_after(after)

    async def close(self) -> None:
        await self.peer.close()


async def ask(link: Link, question: bytes, lead_ms: float) -> Sample | None:
    """One question after `lead_ms` of silence; None if no audible reply came, or if a reply started
    while the question was still being said (a cut-in: that turn measures turn detection, not speed)."""
    link.discard()
    await link.say(bytes(2 * int(24 * lead_ms)))
    end = await link.say(question)
    audio, seen = AudioSeen(), set()
    said = turn_end = end_seen = None
    cut = False
    async with link.listening():
        while "response.done" not in seen:
            at, ev = await link.next_event(90)
            kind = ev.get("type", "")
            if kind == "response.created" and at < end:
                cut = True
                break
            seen.add(kind)
            if kind == "input_audio_buffer.speech_stopped" and "response.created" not in seen:
                turn_end = link.wall_of(float(ev.get("audio_end_ms", -1)))  # the last one before the reply
                end_seen = (at - turn_end) * 1000 if turn_end is not None else None
            elif kind == "response.output_audio_transcript.delta" and said is None:
                said = at
            elif kind == "response.output_audio.delta":
                audio.add(at, ev)
            elif kind == "output_audio_buffer.started" and not audio.response_id:
                audio.response_id = ev.get("response_id", "")  # WebRTC: the response that played
        if not cut:
            await link.settle(seen)
    if cut:
        await quiet(link)
        return None
    heard = link.first_audible(end, audio)
    if heard is None or heard < end:
        return None
    sample = Sample(
        transport=link.name,
        v2v=(heard - end) * 1000,
        media=(heard - said) * 1000 if said is not None else None,
        after_end=(heard - turn_end) * 1000 if turn_end is not None else None,
        end_seen=end_seen,
        first_delta=(audio.first_at - end) * 1000 if audio.first_at is not None else None,
        response_id=audio.response_id,
        heard=heard,
    )
    if isinstance(link, RtcLink):
        sample.loud_packet = link.peer.heard.first_loud_packet_after(end)
    return sample


async def quiet(link: Link, for_s: float = 2.5) -> None:
    """Keep the microphone open until no event has come for `for_s` (replies, playback, all over)."""
    async with link.listening():
        with contextlib.suppress(TimeoutError):
            while True:
                await link.next_event(for_s)


async def cut_in(link: Link, head: bytes, pause_s: float, tail: bytes) -> bool:
    """An unfinished utterance with a pause inside: True if a reply started before the rest was said."""
    link.discard()
    await link.say(bytes(2 * 24 * 300))
    tail_sent = await link.say(head + bytes(2 * int(24_000 * pause_s)) + tail)
    created = None
    async with link.listening():
        with contextlib.suppress(TimeoutError):
            while created is None:
                at, ev = await link.next_event(max(0.05, tail_sent + 5 - time.monotonic()))
                if ev.get("type") == "response.created":
                    created = at
    await quiet(link)  # let the reply (or replies) finish
    return created is not None and created < tail_sent
