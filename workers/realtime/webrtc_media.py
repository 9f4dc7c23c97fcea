"""Audio plumbing shared by both ends of a call (the pool's `Call` and the Python test peer).

- `PacedAudioTrack`: an outgoing track that hands aiortc one 20 ms frame per `Pacer` tick, taking the
  frame's samples at the moment it is due (not a frame early), so speech queued between ticks goes out
  at the next one.
- `PromptAudioBuffer`: aiortc's receive buffer for audio (`JitterBuffer(capacity=16, prefetch=4)`)
  hands a packet on only once four later ones have arrived, i.e. it holds every frame 80 ms (and, after
  a lost packet, until 16 have piled up, for good). A pool process does not play what it receives: it
  appends it to the session's input buffer, so holding frames back only delays the end of the user's
  turn. Each Opus RTP packet is one whole frame, so this buffer passes a packet on as soon as it is
  next in sequence, and gives up on a missing one once `MAX_GAP` later packets are in. The test peer
  uses it too, as a stand-in for a browser's adaptive buffer, which on a clean path holds far less than
  aiortc's fixed four frames.
"""

from __future__ import annotations

import fractions
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add
from av import AudioFrame

from pipelines.realtime.playout import FRAME_MS, Pacer

#: a missing packet counts as lost once this many later ones are in: a packet one place out of order
#: is still caught, and after a loss or a reordering at most one frame (20 ms) stays held
MAX_GAP = 2
#: a 20 ms frame louder than this (RMS, full scale 1) is speech, not silence or a reply's quiet start
AUDIBLE_RMS = 0.01
PacketHook = Callable[[RtpPacket], None]


def audible(pcm: bytes | np.ndarray) -> bool:
    """Whether PCM16 samples (bytes or an int16 array) are louder than `AUDIBLE_RMS`."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
    if not len(samples):
        return False
    return float(np.sqrt(np.mean((samples.astype(np.float32) / 32768) ** 2))) > AUDIBLE_RMS


class PacedAudioTrack(MediaStreamTrack):
    """Mono PCM16 at `rate`, 20 ms per frame at real-time pace; subclasses say what each frame holds."""

    kind = "audio"

    def __init__(self, rate: int) -> None:
        super().__init__()
        self.rate = rate
        self.frame_samples = rate * FRAME_MS // 1000
        self.pacer = Pacer()

    def next_samples(self) -> bytes | np.ndarray:
        """The frame due now: `frame_samples` PCM16 samples."""
        raise NotImplementedError

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self.pacer.tick()
        samples = self.next_samples()
        frame = AudioFrame(format="s16", layout="mono", samples=self.frame_samples)
        frame.planes[0].update(samples if isinstance(samples, bytes) else samples.astype("<i2").tobytes())
        frame.pts = index * self.frame_samples
        frame.sample_rate = self.rate
        frame.time_base = fractions.Fraction(1, self.rate)
        return frame


class PromptAudioBuffer(JitterBuffer):
    """Hands each audio packet on as soon as it is next in sequence (see the module docstring).

    `on_packet` sees every packet as it arrives (a benchmark's receive timestamps)."""

    def __init__(self, on_packet: PacketHook | None = None) -> None:
        super().__init__(capacity=16)
        self.on_packet = on_packet

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self.on_packet is not None:
            self.on_packet(packet)
        return super().add(packet)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        newest = uint16_add(sequence_number, -self._origin)  # how far past the origin packets have come
        for skip in range(self.capacity):
            packet = self._packets[uint16_add(self._origin, skip) % self.capacity]
            if packet is None:
                continue
            if skip and newest - skip + 1 < MAX_GAP:
                return None  # `skip` packets missing before this one: they may still come
            self.remove(skip + 1)
            return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]
        return None


def prompt_audio(pc: RTCPeerConnection, on_packet: PacketHook | None = None) -> int:
    """Give every audio receiver of `pc` a `PromptAudioBuffer`; how many were changed.

    Call it once the transceivers exist (after `addTrack`, or after applying a remote offer) and before
    media flows. aiortc offers no option for its buffer, so this sets its private attribute: a newer
    aiortc that renames it changes nothing here (0 is returned and the tests say so)."""
    changed = 0
    for transceiver in pc.getTransceivers():
        receiver: Any = transceiver.receiver
        if transceiver.kind == "audio" and isinstance(
            getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None), JitterBuffer
        ):
            receiver._RTCRtpReceiver__jitter_buffer = PromptAudioBuffer(on_packet)
            changed += 1
    return changed
