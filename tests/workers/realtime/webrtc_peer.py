"""A real WebRTC peer in Python (aiortc), playing the part of the browser: a microphone track that
plays given speech at real-time pace, the `oai-events` data channel, and a recorder of the audio the
server sends back. Used by the WebRTC tests and by `bench/realtime.py --transport webrtc`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from workers.realtime.webrtc_media import AUDIBLE_RMS, PacedAudioTrack, audible, prompt_audio

T = TypeVar("T")
MIC_RATE = 48_000
FRAME = MIC_RATE // 50  # 20 ms
AUDIBLE_DBOV = 20 * math.log10(AUDIBLE_RMS)  # the audio-level header's scale for the same threshold


class Microphone(PacedAudioTrack):
    """Plays queued 48 kHz mono PCM16 in 20 ms frames at real-time pace; silence in between."""

    def __init__(self) -> None:
        super().__init__(MIC_RATE)
        self._frames: deque[np.ndarray] = deque()
        self.last_speech_at = 0.0  # monotonic time the last queued speech frame went out
        self.sent_at: list[float] = []  # when each frame went out: input audio time -> wall time

    def say(self, samples: np.ndarray) -> None:
        pad = (-len(samples)) % FRAME
        samples = np.concatenate([samples.astype(np.int16), np.zeros(pad, dtype=np.int16)])
        for i in range(0, len(samples), FRAME):
            self._frames.append(samples[i : i + FRAME])

    @property
    def busy(self) -> bool:
        return bool(self._frames)

    def next_samples(self) -> np.ndarray:
        data = self._frames.popleft() if self._frames else np.zeros(FRAME, dtype=np.int16)
        self.sent_at.append(time.monotonic())
        if self._frames or np.any(data):
            self.last_speech_at = self.sent_at[-1]
        return data


@dataclass
class Heard:
    """Audio received from the server: (monotonic time, audible) per decoded frame, and the arrival time
    of every RTP packet whose audio-level header (RFC 6464, set by the sender) says it is not silence."""

    frames: list[tuple[float, bool]] = field(default_factory=list)
    loud_packets: list[float] = field(default_factory=list)

    def first_speech_after(self, t: float) -> float | None:
        return next((at for at, loud in self.frames if at >= t and loud), None)

    def first_loud_packet_after(self, t: float) -> float | None:
        return next((at for at in self.loud_packets if at >= t), None)

    def speech_ms_between(self, start: float, end: float) -> float:
        return 20.0 * sum(1 for at, loud in self.frames if start <= at < end and loud)

    def on_packet(self, packet: RtpPacket) -> None:
        level = packet.extensions.audio_level  # (voice activity, -dBov), or None
        if level is not None and -level[1] > AUDIBLE_DBOV:
            self.loud_packets.append(time.monotonic())


class Peer:
    """One call from the client side. `on_event` also gets each server event with its arrival time."""

    def __init__(self, on_event: Callable[[tuple[float, dict[str, Any]]], None] | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = Microphone()
        self.pc.addTrack(self.mic)
        self.heard = Heard()
        prompt_audio(self.pc, self.heard.on_packet)  # see `PromptAudioBuffer`: no fixed 80 ms hold
        self.channel = self.pc.createDataChannel("oai-events")
        self.opened = asyncio.Event()
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._new_event = asyncio.Event()
        self.location: str | None = None
        self.on_event = on_event
        self._tasks: list[asyncio.Task[Any]] = []
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, message: str | bytes) -> None:
        self.events.append((time.monotonic(), json.loads(message)))
        self._new_event.set()
        if self.on_event is not None:
            self.on_event(self.events[-1])

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def record() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                self.heard.frames.append((time.monotonic(), audible(frame.to_ndarray())))

        self._tasks.append(asyncio.ensure_future(record()))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def call(
        self, url: str, token: str, *, session: dict[str, Any] | None = None, sdp: str | None = None
    ) -> httpx.Response:
        """POST the offer; on 201 apply the answer. Returns the HTTP response either way."""
        sdp = sdp if sdp is not None else await self.offer()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            if session is None:
                headers["Content-Type"] = "application/sdp"
                response = await client.post(url, content=sdp, headers=headers)
            else:
                files = {
                    "sdp": (None, sdp, "application/sdp"),
                    "session": (None, json.dumps(session), "application/json"),
                }
                response = await client.post(url, files=files, headers=headers)
        if response.status_code == 201:
            self.location = response.headers.get("location")
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        return response

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def wait_for(self, kind: str, timeout: float = 30.0, after: float = 0.0) -> dict[str, Any]:
        """The first event of `kind` received at or after monotonic time `after`."""
        deadline = time.monotonic() + timeout
        while True:
            for at, ev in self.events:
                if at >= after and ev.get("type") == kind:
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [e.get("type") for _, e in self.events][-30:]
                raise TimeoutError(f"no {kind} within {timeout} s; last events: {seen}")
            self._new_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), left)

    def at(self, kind: str, after: float = 0.0) -> float | None:
        return next((at for at, ev in self.events if at >= after and ev.get("type") == kind), None)

    def types(self) -> list[str]:
        return [ev.get("type", "") for _, ev in self.events]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()
