"""AAC in ADTS frames, encoded as the audio arrives (what OpenAI's speech API sends for `aac`).

libsndfile has no AAC encoder, so this uses FFmpeg's native one through PyAV (`av`, wheels with FFmpeg
inside; faster-whisper already depends on it). ADTS, not MP4: every frame carries its own header, so the
stream can be played while it is still being written and needs no index rewritten at the end.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

BIT_RATE = 64_000  # mono speech at 24 kHz; OpenAI's own aac is of this order


def available() -> bool:
    """Whether this process can encode AAC (PyAV importable, with FFmpeg's aac encoder)."""
    try:
        import av
    except ImportError:
        return False
    return "aac" in av.codecs_available


class _Collect(io.RawIOBase):
    """A write-only file for the muxer that hands out what was written since the last `take()`."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


class AacEncoder:
    """int16 mono chunks at `rate` in, ADTS bytes out as soon as whole AAC frames exist."""

    def __init__(self, rate: int) -> None:
        import av

        self._rate = rate
        self._out = _Collect()
        self._container = av.open(self._out, "w", format="adts")
        self._stream: Any = self._container.add_stream("aac", rate=rate, layout="mono")
        self._stream.bit_rate = BIT_RATE
        self._pts = 0

    def push(self, pcm: np.ndarray) -> bytes:
        if len(pcm):
            import av

            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = self._rate
            frame.pts = self._pts
            self._pts += len(pcm)
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._out.take()

    def finish(self) -> bytes:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._out.take()
