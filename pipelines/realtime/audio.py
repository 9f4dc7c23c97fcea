"""Audio at the edge of a session: wire formats in and out, streaming resamplers, delta chunking.

Resampling is done with one stateful `soxr.ResampleStream` per direction, so chunk boundaries of 20 ms
frames leave no clicks or edge effects that a per-chunk one-shot resample would add.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import soxr

from pipelines.audio import pcm
from pipelines.realtime.config import AudioFormat
from pipelines.realtime.protocol import ProtocolError

PCM_RATE = 24_000
G711_RATE = 8_000
MODEL_RATE = 16_000  # VAD and Whisper


def wire_rate(fmt: AudioFormat) -> int:
    return PCM_RATE if fmt == "audio/pcm" else G711_RATE


def bytes_per_ms(fmt: AudioFormat) -> float:
    """Bytes of one millisecond of wire audio (pcm16 is 2 bytes a sample, G.711 one)."""
    return wire_rate(fmt) / 1000 * (2 if fmt == "audio/pcm" else 1)


def _g711_decode(data: bytes, fmt: AudioFormat) -> np.ndarray:
    return pcm.ulaw_to_float32(data) if fmt == "audio/pcmu" else pcm.alaw_to_float32(data)


def _g711_encode(samples: np.ndarray, fmt: AudioFormat) -> bytes:
    return pcm.float32_to_ulaw(samples) if fmt == "audio/pcmu" else pcm.float32_to_alaw(samples)


def decode_b64(audio: str) -> bytes:
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("audio is not valid base64.", param="audio") from exc


class InputDecoder:
    """Wire bytes of the session's input format -> float32 mono at 16 kHz, streaming."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.fmt = fmt
        # MQ: plenty for VAD and Whisper at 16 kHz, and it holds back less audio (15 ms, not 21 ms).
        self._resampler = soxr.ResampleStream(wire_rate(fmt), MODEL_RATE, 1, dtype="float32", quality="MQ")
        self._odd = b""

    def decode(self, data: bytes) -> np.ndarray:
        if self.fmt == "audio/pcm":
            data = self._odd + data
            cut = len(data) - len(data) % 2
            data, self._odd = data[:cut], data[cut:]
            samples = pcm.pcm16_to_float(data)
        else:
            samples = _g711_decode(data, self.fmt).astype(np.float32, copy=False)
        return self._resampler.resample_chunk(samples)


def int16_to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


class OutputEncoder:
    """TTS int16 at the voice's rate -> wire bytes of the session's output format, streaming."""

    def __init__(self, fmt: AudioFormat, source_rate: int) -> None:
        self.fmt = fmt
        self._resampler = soxr.ResampleStream(source_rate, wire_rate(fmt), 1, dtype="float32")

    def encode(self, samples: np.ndarray, *, last: bool = False) -> bytes:
        audio = int16_to_float(samples) if samples.dtype == np.int16 else samples.astype(np.float32)
        # 0.9 headroom: piper peak-normalizes and the resampler's ringing would clip at full scale.
        out = self._resampler.resample_chunk(audio * 0.9, last=last)
        if self.fmt == "audio/pcm":
            return (np.clip(out, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        return _g711_encode(out, self.fmt)


def chunk_bytes(data: bytes, fmt: AudioFormat, chunk_ms: int) -> list[bytes]:
    """Split wire audio into deltas of `chunk_ms`, aligned to whole samples."""
    size = int(bytes_per_ms(fmt) * chunk_ms)
    size -= size % 2 if fmt == "audio/pcm" else 0
    return [data[i : i + size] for i in range(0, len(data), size)] if data else []


def duration_ms(nbytes: int, fmt: AudioFormat) -> float:
    return nbytes / bytes_per_ms(fmt)
