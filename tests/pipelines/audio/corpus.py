"""Good and malformed audio uploads, generated in memory so the tests need no fixture files.

Every builder is cached: the bombs take a fraction of a second to encode and several tests share them.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from functools import cache

import numpy as np
import soundfile as sf

RATES = (8_000, 16_000, 44_100, 48_000)
#: (libsndfile format, subtype) of each allow-listed container.
GOOD_FORMATS = {
    "WAV": ("WAV", "PCM_16"),
    "FLAC": ("FLAC", "PCM_16"),
    "OGG": ("OGG", "VORBIS"),
    "MP3": ("MP3", "MPEG_LAYER_III"),
}
BOMB_RATE = 8_000
BOMB_SECONDS = 11 * 60

# Byte offsets in the canonical 44-byte header soundfile writes for PCM WAV.
_WAV_CHANNELS, _WAV_RATE, _WAV_DATA_SIZE = 22, 24, 40


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A 440 Hz tone at half scale; stereo channels differ so a bad downmix would show."""
    t = np.arange(round(seconds * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    columns = [left * (1 if c % 2 == 0 else -0.5) for c in range(channels)]
    return np.stack(columns, axis=1).astype(np.float32)


def write(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    """Write in small chunks: libvorbis overflows its stack on one large write."""
    samples = samples if samples.ndim == 2 else samples[:, None]
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, samples.shape[1], format=fmt, subtype=subtype) as file:
        for start in range(0, len(samples), 8192):
            file.write(samples[start : start + 8192])
    return buffer.getvalue()


@cache
def good(container: str, rate: int, channels: int, seconds: float = 1.0) -> bytes:
    fmt, subtype = GOOD_FORMATS[container]
    return write(tone(seconds, rate, channels), rate, fmt, subtype)


@cache
def wav(rate: int = 16_000, channels: int = 1, seconds: float = 1.0) -> bytes:
    return good("WAV", rate, channels, seconds)


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


# --- not audio ------------------------------------------------------------------------------------------


def random_bytes() -> bytes:
    data = np.random.default_rng(1234).bytes(4096)
    assert data[0] != 0xFF, "seed chosen so the noise does not start with an MPEG sync word"
    return data


def text() -> bytes:
    return b"Hello! This is a plain text file that somebody uploaded instead of a recording.\n" * 20


def png() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + b"\x00" * 4 + b"\x00" * 64


# --- audio we do not accept ------------------------------------------------------------------------------


@cache
def aiff() -> bytes:
    return write(tone(1.0, 16_000), 16_000, "AIFF", "PCM_16")


@cache
def au() -> bytes:
    return write(tone(1.0, 16_000), 16_000, "AU", "PCM_16")


def m4a_header() -> bytes:
    """The first box of an MP4/M4A file, as phones record voice memos."""
    return struct.pack(">I", 24) + b"ftypM4A " + b"\x00\x00\x00\x00M4A isom" + b"\x00" * 200


def webm_header() -> bytes:
    """The EBML magic of Matroska/WebM, as browsers' MediaRecorder produces."""
    return b"\x1a\x45\xdf\xa3" + b"\x00" * 200


# --- forged or damaged WAV ------------------------------------------------------------------------------


def wav_first_20_bytes() -> bytes:
    return wav()[:20]


def wav_header_only() -> bytes:
    """A 44-byte header promising one second of audio that is not there."""
    return wav()[:44]


def wav_lying_data_size() -> bytes:
    """The data chunk claims ten times the bytes the file holds."""
    data = wav()
    return patched(data, _WAV_DATA_SIZE, "<I", 10 * (len(data) - 44))


def wav_understated_data_size() -> bytes:
    """The data chunk claims 100 bytes (50 frames); readers must stop there, not read the rest."""
    return patched(wav(), _WAV_DATA_SIZE, "<I", 100)


def wav_streaming_sizes() -> bytes:
    """Sizes left at 0xFFFFFFFF by a writer that could not seek back: "unknown", not a lie."""
    data = patched(wav(), 4, "<I", 0xFFFFFFFF)
    return patched(data, _WAV_DATA_SIZE, "<I", 0xFFFFFFFF)


def wav_zero_data() -> bytes:
    """A well-formed WAV with a data chunk of zero bytes."""
    return patched(wav()[:44], _WAV_DATA_SIZE, "<I", 0)


def wav_sample_rate(rate: int) -> bytes:
    return patched(wav(), _WAV_RATE, "<I", rate)


def wav_channels(channels: int) -> bytes:
    return patched(wav(), _WAV_CHANNELS, "<H", channels)


def wav_ten_hours_in_1kb() -> bytes:
    """A header declaring ten hours of 16 kHz mono, followed by under 1 KB of samples."""
    declared = 16_000 * 2 * 10 * 3600
    header = patched(wav()[:44], _WAV_DATA_SIZE, "<I", declared)
    header = patched(header, 4, "<I", declared + 36)
    return header + b"\x00" * (1024 - 44)


# --- other damaged containers ---------------------------------------------------------------------------


def cut_in_half(container: str) -> bytes:
    data = good(container, 16_000, 1)
    return data[: len(data) // 2]


@cache
def flac_with_streaminfo(*, total_frames: int | None = None, rate: int | None = None) -> bytes:
    """Patch the STREAMINFO block: 20 bits of rate and 36 bits of total frames at bytes 18..25."""
    data = bytearray(good("FLAC", 16_000, 1, seconds=2.0))
    field = int.from_bytes(data[18:26], "big")
    if total_frames is not None:
        field = (field & ~((1 << 36) - 1)) | total_frames
    if rate is not None:
        field = (field & ((1 << 44) - 1)) | (rate << 44)
    data[18:26] = field.to_bytes(8, "big")
    return bytes(data)


# --- compression bombs ----------------------------------------------------------------------------------


@cache
def silence_bomb(container: str) -> bytes:
    """Eleven minutes of silence: tens of kilobytes compressed, 5.3 million frames decoded."""
    fmt, subtype = GOOD_FORMATS[container]
    return write(np.zeros(BOMB_RATE * BOMB_SECONDS, dtype=np.float32), BOMB_RATE, fmt, subtype)


# --- the table the validation and decode tests share ------------------------------------------------

#: name -> (builder, expected code, expected status)
REJECTED: dict[str, tuple[Callable[[], bytes], str, int]] = {
    "empty": (lambda: b"", "empty_file", 422),
    "random bytes": (random_bytes, "not_audio", 415),
    "text": (text, "not_audio", 415),
    "png": (png, "not_audio", 415),
    "aiff": (aiff, "unsupported_format", 415),
    "au": (au, "unsupported_format", 415),
    "m4a": (m4a_header, "unsupported_format", 415),
    "webm": (webm_header, "unsupported_format", 415),
    "wav first 20 bytes": (wav_first_20_bytes, "truncated", 422),
    "wav header only": (wav_header_only, "truncated", 422),
    "wav lying data size": (wav_lying_data_size, "truncated", 422),
    "wav 10 hours in 1 KB": (wav_ten_hours_in_1kb, "truncated", 422),
    "wav zero data": (wav_zero_data, "empty_file", 422),
    "wav 1 Hz": (lambda: wav_sample_rate(1), "bad_sample_rate", 422),
    "wav 4 GHz": (lambda: wav_sample_rate(4_000_000_000), "bad_sample_rate", 422),
    "wav 7999 Hz": (lambda: wav_sample_rate(7_999), "bad_sample_rate", 422),
    "wav 192001 Hz": (lambda: wav_sample_rate(192_001), "bad_sample_rate", 422),
    "wav 0 channels": (lambda: wav_channels(0), "bad_channels", 422),
    "wav 9 channels": (lambda: wav_channels(9), "bad_channels", 422),
    "wav 65535 channels": (lambda: wav_channels(65_535), "bad_channels", 422),
    "flac 1 Hz": (lambda: flac_with_streaminfo(rate=1), "bad_sample_rate", 422),
    "flac bomb": (lambda: silence_bomb("FLAC"), "too_long", 422),
    "ogg bomb": (lambda: silence_bomb("OGG"), "too_long", 422),
    "mp3 cut in half": (lambda: cut_in_half("MP3"), "truncated", 422),
    "ogg cut in half": (lambda: cut_in_half("OGG"), "decode_failed", 422),
}
