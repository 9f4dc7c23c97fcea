"""Speech on a real-time media track: the session's output audio cut into 20 ms frames, played in order.

Over WebSocket the client plays the audio deltas and the server only estimates what was heard. On a
WebRTC call the server's own track plays the audio, so it knows exactly: `Playout` counts every frame it
hands to the track, per item. A barge-in (`clear`) drops what is queued at once and reports how many
milliseconds of the item really went out, which is what the history must keep.

It also produces the WebRTC-only events: `output_audio_buffer.started` when a response's first frame
goes out, `.stopped` when its last frame has gone and no more is coming, `.cleared` when it is cut.
Pure and synchronous: the track calls `next_frame()` every 20 ms; the session side calls `feed`/`finish`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from pipelines.realtime.protocol import event

RATE = 24_000  # the session's PCM output rate (`audio/pcm`)
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE = bytes(FRAME_BYTES)

EventSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Cut:
    """What a clear interrupted: the item that was playing and how much of it went out."""

    response_id: str
    item_id: str
    played_ms: float


class Playout:
    """A queue of 20 ms PCM16 frames, each tagged with the response and item it belongs to."""

    def __init__(self, on_event: EventSink) -> None:
        self._on_event = on_event
        self._frames: deque[tuple[str, str, bytes]] = deque()
        self._partial: dict[str, tuple[str, bytes]] = {}  # response -> (item, bytes short of a frame)
        self._finished: set[str] = set()
        self._dropped: set[str] = set()  # cut responses: audio still arriving for them is discarded
        self._playing: tuple[str, str] | None = None  # (response, item) whose frames are going out
        self.played_ms: dict[str, float] = {}  # item id -> ms sent on the track

    @property
    def queued_ms(self) -> float:
        return len(self._frames) * FRAME_MS

    @property
    def playing(self) -> str | None:
        """The response whose frames are going out now."""
        return self._playing[0] if self._playing is not None else None

    @property
    def active(self) -> bool:
        """A response's audio is playing or queued."""
        return self._playing is not None or bool(self._frames)

    def feed(self, response_id: str, item_id: str, pcm: bytes) -> None:
        if response_id in self._dropped:
            return
        _, held = self._partial.pop(response_id, (item_id, b""))
        data = held + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        for i in range(0, whole, FRAME_BYTES):
            self._frames.append((response_id, item_id, data[i : i + FRAME_BYTES]))
        if whole < len(data):
            self._partial[response_id] = (item_id, data[whole:])

    def finish(self, response_id: str) -> None:
        """No more audio will come for this response: pad its last frame, and let it be `stopped`."""
        item_id, rest = self._partial.pop(response_id, ("", b""))
        if rest and response_id not in self._dropped:
            self._frames.append((response_id, item_id, rest + bytes(FRAME_BYTES - len(rest))))
        self._finished.add(response_id)
        if self._playing is not None and self._playing[0] == response_id and not self._frames:
            self._stop()

    def next_frame(self) -> bytes:
        """The next 20 ms to send: queued speech, else silence."""
        if not self._frames:
            if self._playing is not None and self._playing[0] in self._finished:
                self._stop()
            return SILENCE
        response_id, item_id, frame = self._frames.popleft()
        if self._playing is None or self._playing[0] != response_id:
            if self._playing is not None:
                self._stop()
            self._on_event(event("output_audio_buffer.started", response_id=response_id))
        self._playing = (response_id, item_id)
        self.played_ms[item_id] = self.played_ms.get(item_id, 0.0) + FRAME_MS
        if not self._frames and response_id in self._finished:
            self._stop()
        return frame

    def clear(self) -> Cut | None:
        """Barge-in: drop everything queued now; None if nothing was playing or queued."""
        current = self._playing or (self._frames[0][:2] if self._frames else None)
        dropped = {r for r, _, _ in self._frames} | set(self._partial)
        self._frames.clear()
        self._partial.clear()
        if current is None:
            self._dropped |= dropped
            return None
        response_id, item_id = current
        self._dropped |= dropped | {response_id}
        self._playing = None
        self._on_event(event("output_audio_buffer.cleared", response_id=response_id))
        return Cut(response_id, item_id, self.played_ms.get(item_id, 0.0))

    def _stop(self) -> None:
        assert self._playing is not None
        self._on_event(event("output_audio_buffer.stopped", response_id=self._playing[0]))
        self._playing = None


class Pacer:
    """Real-time pace for a stream of fixed-length frames: the n-th `tick` returns at start + n frames.

    Anchored to the first tick rather than sleeping one frame each time, so audio time maps to wall time
    without drift. A tick found more than `max_lag_s` late (a blocked loop, or a stream that resumes
    after a pause) restarts the clock there instead of sending a burst to catch up. Shared by the call's
    outgoing track, the test microphone and the benchmarks' streamers."""

    def __init__(self, frame_s: float = FRAME_MS / 1000, max_lag_s: float = 0.2) -> None:
        self.frame_s, self.max_lag_s = frame_s, max_lag_s
        self.frames = 0  # ticks so far, across restarts
        self._start: float | None = None
        self._since_start = 0

    async def tick(self) -> int:
        """Wait until the next frame is due; its index in the stream (a track's pts in frames)."""
        now = time.monotonic()
        if self._start is not None:
            self._since_start += 1
            wait = self._start + self._since_start * self.frame_s - now
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -self.max_lag_s:
                self._start = None
        if self._start is None:
            self._start, self._since_start = now, 0
        self.frames += 1
        return self.frames - 1


#: taps of the 2x half-band filter: 0.5 ms of group delay at 48 kHz, > 50 dB down above 12.8 kHz
HALF_BAND_TAPS = 48


def _half_band() -> np.ndarray:
    """A windowed-sinc low-pass at a quarter of the high rate (the low rate's Nyquist), unit DC gain."""
    n = np.arange(HALF_BAND_TAPS) - (HALF_BAND_TAPS - 1) / 2
    taps = np.sinc(n / 2) * np.kaiser(HALF_BAND_TAPS, 6.0)
    return (taps / taps.sum()).astype(np.float32)


class TwoX:
    """Streaming 24 <-> 48 kHz by a factor of two with a short FIR: exactly twice (or half) the samples
    of each chunk, at once. soxr's streaming resamplers hand samples on in bursts (its HQ stream gives
    nothing for one 20 ms chunk, then 35 ms' worth with the next), and aiortc's Opus encoder, given
    24 kHz, resamples through a 960-sample FIFO that holds every frame back by a whole frame (20 ms);
    on a call that is latency on every turn, in and out."""

    def __init__(self) -> None:
        self._taps = _half_band()
        self._history = np.zeros(HALF_BAND_TAPS - 1, dtype=np.float32)
        self._phase = 0  # down: parity of the next input sample's index

    def _filter(self, x: np.ndarray) -> np.ndarray:
        data = np.concatenate([self._history, x])
        self._history = data[len(data) - (HALF_BAND_TAPS - 1) :]
        return np.convolve(data, self._taps, mode="valid")

    def up(self, x: np.ndarray) -> np.ndarray:
        """24 kHz float samples -> 48 kHz (zero-stuffed, filtered, gain 2 for the zeros)."""
        stuffed = np.zeros(2 * len(x), dtype=np.float32)
        stuffed[::2] = x
        return 2 * self._filter(stuffed)

    def down(self, x: np.ndarray) -> np.ndarray:
        """48 kHz float samples -> 24 kHz (filtered, every second sample, across chunk edges)."""
        out = self._filter(x.astype(np.float32))[self._phase :: 2]
        self._phase = (self._phase + len(x)) % 2
        return out


def up_to_48k(converter: TwoX, pcm24: bytes) -> bytes:
    """24 kHz PCM16 -> 48 kHz PCM16 through `converter` (its state carries across frames)."""
    audio = np.frombuffer(pcm24, dtype="<i2").astype(np.float32)
    return np.clip(converter.up(audio), -32768, 32767).astype("<i2").tobytes()


class StereoTo24k:
    """Decoded Opus (48 kHz, interleaved stereo PCM16) -> the session's 24 kHz mono PCM16, streaming.

    One stateful resampler for the whole call, so 20 ms frame edges add no clicks: `TwoX` from 48 kHz
    (what Opus decodes to), which hands each frame on whole at once; soxr from any other rate."""

    def __init__(self, source_rate: int = 48_000) -> None:
        self.source_rate = source_rate
        self._two_x = TwoX() if source_rate == 2 * RATE else None
        self._resampler = (
            None if self._two_x else soxr.ResampleStream(source_rate, RATE, 1, dtype="float32", quality="HQ")
        )

    def convert(self, samples: np.ndarray, channels: int) -> bytes:
        audio = samples.reshape(-1).astype(np.float32) / 32768.0
        if channels > 1:
            audio = audio.reshape(-1, channels).mean(axis=1)
        if self._two_x is not None:
            out = self._two_x.down(audio)
        else:
            assert self._resampler is not None
            out = self._resampler.resample_chunk(audio)
        return (np.clip(out, -1.0, 1.0) * 32767).astype("<i2").tobytes()
