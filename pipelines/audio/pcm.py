"""Raw sample encodings spoken on the realtime WebSocket: 16-bit PCM and G.711 mu-law / A-law.

Telephony bridges send 8 kHz G.711 and browsers send PCM16, so these run on every audio frame of every
session: they are vectorised numpy, and `audioop` (deprecated in 3.11, removed in 3.13) is not used.
The G.711 arithmetic follows the ITU reference (Sun's g711.c), the same tables `audioop` produced.

Floats use the scale 32768 in both directions, so int16 -> float -> int16 is lossless.
"""

from __future__ import annotations

import numpy as np

_PCM16 = np.dtype("<i2")
_SCALE = 32768.0

# G.711 segment end points (ITU-T G.711, Sun g711.c), on 14-bit (mu-law) and 13-bit (A-law) magnitudes.
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x21  # 0x84 >> 2: the bias on the 14-bit magnitude
_ULAW_CLIP = 8159


def to_int16(samples: np.ndarray) -> np.ndarray:
    """int16 passes through; floats are clipped to [-1, 1] first, because int16 overflow would wrap."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples
    if not np.issubdtype(samples.dtype, np.floating):
        raise TypeError(f"expected int16 or float samples, got {samples.dtype}")
    scaled = np.rint(samples.astype(np.float64) * _SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Floats are clipped to [-1, 1] so downstream encoders never see out-of-range values."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / np.float32(_SCALE)
    if not np.issubdtype(samples.dtype, np.floating):
        raise TypeError(f"expected int16 or float samples, got {samples.dtype}")
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes to float32 in [-1, 1); an odd length is a framing bug, never padded."""
    return pcm16_to_int16(data).astype(np.float32) / np.float32(_SCALE)


def pcm16_to_int16(data: bytes) -> np.ndarray:
    """Little-endian PCM16 bytes to native int16, refusing a half sample."""
    if len(data) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype=_PCM16).astype(np.int16)


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float (or int16) samples to little-endian PCM16 bytes, clipping instead of wrapping."""
    return to_int16(samples).astype(_PCM16, copy=False).tobytes()


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples to G.711 mu-law bytes."""
    x = _as_int32(samples) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return (code ^ mask).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes to int16 samples."""
    return _ULAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples to G.711 A-law bytes."""
    x = _as_int32(samples) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    magnitude = np.where(x >= 0, x, -x - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude)
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> shift) & 0x0F))
    return (code ^ mask).astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """G.711 A-law bytes to int16 samples."""
    return _ALAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_to_float32(data: bytes) -> np.ndarray:
    """mu-law bytes straight to the float32 the models take; the realtime input path calls this."""
    return ulaw_decode(data).astype(np.float32) / np.float32(_SCALE)


def float32_to_ulaw(samples: np.ndarray) -> bytes:
    """Float samples (clipped to [-1, 1]) to mu-law bytes; the realtime output path calls this."""
    return ulaw_encode(to_int16(samples))


def alaw_to_float32(data: bytes) -> np.ndarray:
    """A-law bytes straight to float32, as `ulaw_to_float32`."""
    return alaw_decode(data).astype(np.float32) / np.float32(_SCALE)


def float32_to_alaw(samples: np.ndarray) -> bytes:
    """Float samples to A-law bytes, as `float32_to_ulaw`."""
    return alaw_encode(to_int16(samples))


def _as_int32(samples: np.ndarray) -> np.ndarray:
    """G.711 is defined on 16-bit integers; a float here would be silently mis-scaled, so refuse it."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encoding takes int16 samples, got {samples.dtype}")
    return samples.astype(np.int32)


def _ulaw_table() -> np.ndarray:
    """All 256 decoded values; decoding is then a single gather."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return np.where(code & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _alaw_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    magnitude = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_TABLE = _ulaw_table()
_ALAW_TABLE = _alaw_table()
