"""Decoding an upload to the mono float signal speech-to-text expects.

Channels are averaged and the rate converted block by block while decoding, so the only large allocation
is the output at the target rate: a 192 kHz, 8-channel upload never exists in memory at its own rate.
"""

from __future__ import annotations

import numpy as np
import soxr

from pipelines.audio.validation import open_audio


def decode_to_mono(
    data: bytes, *, target_rate: int, max_seconds: float, max_bytes: int | None = None
) -> np.ndarray:
    """Validate and decode `data` to float32 mono in [-1, 1] at `target_rate` (16000 for Whisper).

    Refuses exactly what `inspect_audio` refuses (raising `AudioRejected`); `max_bytes` is optional
    because the edge has usually measured the upload already.
    """
    if target_rate <= 0:
        raise ValueError(f"target_rate must be positive, got {target_rate}")
    with open_audio(data, max_bytes=max_bytes, max_seconds=max_seconds) as stream:
        mixer = _MonoResampler(stream.sample_rate, target_rate)
        parts = [mixer.push(block) for block in stream.blocks()]
        parts.append(mixer.finish())
    samples = np.concatenate(parts)
    # Resampling and lossy decoders overshoot slightly; the contract is [-1, 1].
    return np.clip(samples, -1.0, 1.0, out=samples)


class _MonoResampler:
    """Streaming downmix + rate conversion, so per-block state (soxr's filter history) carries over."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self._stream = (
            None if src_rate == dst_rate else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="float32")
        )

    def push(self, block: np.ndarray) -> np.ndarray:
        """The block's buffer is reused by the reader; the mean makes the copy we keep."""
        mono = block.mean(axis=1, dtype=np.float32)
        return mono if self._stream is None else self._stream.resample_chunk(mono)

    def finish(self) -> np.ndarray:
        """Flush the filter tail; without it the output is a few milliseconds short."""
        if self._stream is None:
            return np.empty(0, dtype=np.float32)
        return self._stream.resample_chunk(np.empty(0, dtype=np.float32), last=True)
