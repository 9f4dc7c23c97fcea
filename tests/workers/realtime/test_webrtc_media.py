"""The media pieces both ends of a call share: the prompt audio receive buffer and the paced track.

Pure: RTP packets are built by hand, and the peer connection is never connected (no sockets)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket

from pipelines.realtime.playout import Pacer
from workers.realtime.webrtc_media import PacedAudioTrack, PromptAudioBuffer, audible, prompt_audio


def packet(seq: int) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq % 65536, timestamp=(seq * 960) % 2**32)
    p._data = f"frame{seq}".encode()  # type: ignore[attr-defined]  # what the receiver depayloads
    return p


def feed(buffer: PromptAudioBuffer, seqs: list[int]) -> list[str | None]:
    out = []
    for seq in seqs:
        _, frame = buffer.add(packet(seq))
        out.append(frame.data.decode() if frame is not None else None)
    return out


def test_each_packet_in_order_is_handed_on_at_once_across_the_sequence_wrap() -> None:
    seqs = list(range(65533, 65533 + 6))
    assert feed(PromptAudioBuffer(), seqs) == [f"frame{s}" for s in seqs]


def test_a_packet_one_place_out_of_order_is_still_caught() -> None:
    assert feed(PromptAudioBuffer(), [10, 12, 11, 13]) == ["frame10", None, "frame11", "frame12"]


def test_a_lost_packet_is_given_up_after_two_later_ones_and_at_most_one_frame_stays_held() -> None:
    out = feed(PromptAudioBuffer(), [10, 12, 13, 14, 15])
    assert out == ["frame10", None, "frame12", "frame13", "frame14"]
    seen: list[int] = []
    buffer = PromptAudioBuffer(on_packet=lambda p: seen.append(p.sequence_number))
    feed(buffer, [1, 2, 5, 6, 7])  # a longer gap: skipped once two packets past it are in
    assert seen == [1, 2, 5, 6, 7]


def test_prompt_audio_replaces_aiortcs_audio_buffer() -> None:
    async def scenario() -> int:
        pc = RTCPeerConnection()
        pc.addTransceiver("audio")
        pc.addTransceiver("video")
        try:
            return prompt_audio(pc)
        finally:
            await pc.close()

    assert asyncio.run(scenario()) == 1, "aiortc's receiver no longer has the buffer attribute we set"


class Ones(PacedAudioTrack):
    def next_samples(self) -> np.ndarray:
        return np.full(self.frame_samples, 1000, dtype=np.int16)


def test_paced_track_frames_are_due_20_ms_apart_and_a_late_loop_restarts_the_clock() -> None:
    async def scenario() -> tuple[list[int], float, float]:
        track = Ones(24_000)
        started = time.monotonic()
        frames = [await track.recv() for _ in range(4)]
        took = time.monotonic() - started
        time.sleep(0.3)  # a blocked loop: the next frame goes at once, and no burst follows
        late = time.monotonic()
        await track.recv()
        await track.recv()
        return [f.pts for f in frames], took, time.monotonic() - late

    pts, took, after = asyncio.run(scenario())
    assert pts == [0, 480, 960, 1440]
    assert took >= 0.059  # three waits of 20 ms after the first frame
    assert after >= 0.019


def test_pacer_counts_frames_across_restarts_and_audible_reads_both_forms() -> None:
    pacer = Pacer(frame_s=0.001, max_lag_s=0.0)
    assert [asyncio.run(pacer.tick()) for _ in range(3)] == [0, 1, 2]
    assert audible(np.full(480, 1000, dtype=np.int16)) and not audible(bytes(960)) and not audible(b"")
