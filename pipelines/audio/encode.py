"""Turning synthesized samples into the bytes a client asked for, and changing their sample rate.

Sample conversion (scale, clipping) is done here with `pcm.to_int16` / `pcm.to_float32` rather than left to
libsndfile, which wraps out-of-range floats around instead of clipping them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from pipelines.audio.pcm import float_to_pcm16, to_float32, to_int16
from pipelines.audio.validation import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

OutputFormat = Literal["wav", "flac", "ogg", "pcm"]

CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "pcm": "audio/pcm"}
)

#: (libsndfile format, subtype, whether the codec takes floats).
_CONTAINERS: Mapping[str, tuple[str, str, bool]] = MappingProxyType(
    {"wav": ("WAV", "PCM_16", False), "flac": ("FLAC", "PCM_16", False), "ogg": ("OGG", "VORBIS", True)}
)
#: libvorbis allocates its analysis buffer on the stack, sized by the frames of one write call: a long
#: reply written in one call overflows the stack and kills the worker (libsndfile #1095,
#: python-soundfile #396). Writing in small chunks keeps that allocation small for every format.
_WRITE_FRAMES = 4096
_RESAMPLE_DTYPES = (np.int16, np.float32, np.float64)


def encode(samples: np.ndarray, sample_rate: int, fmt: OutputFormat) -> bytes:
    """Encode mono (frames,) or multi-channel (frames, channels) int16 or float samples.

    `pcm` is raw little-endian int16, interleaved when there are several channels. Empty input is refused
    because libsndfile writes a zero-byte FLAC for it, which no reader accepts.
    """
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {sorted(CONTENT_TYPES)}")
    samples = _check_samples(samples, sample_rate)
    if fmt == "pcm":
        return float_to_pcm16(samples)
    container, subtype, takes_float = _CONTAINERS[fmt]
    samples = to_float32(samples) if takes_float else to_int16(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", sample_rate, channels, format=container, subtype=subtype) as file:
        for start in range(0, len(samples), _WRITE_FRAMES):
            file.write(samples[start : start + _WRITE_FRAMES])
    return buffer.getvalue()


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Change the sample rate with soxr, keeping the dtype: int16 in gives int16 out, clipped by soxr."""
    samples = np.asarray(samples)
    if samples.dtype not in _RESAMPLE_DTYPES:
        raise TypeError(f"resample takes int16 or float samples, got {samples.dtype}")
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if src_rate == dst_rate or len(samples) == 0:
        return samples.copy()
    return soxr.resample(np.ascontiguousarray(samples), src_rate, dst_rate)


def _check_samples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Refuse what we would refuse on upload too: we never produce audio we would not accept back."""
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2) or len(samples) == 0:
        raise ValueError(f"expected non-empty (frames,) or (frames, channels) samples, got {samples.shape}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample rate {sample_rate} is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    return samples
