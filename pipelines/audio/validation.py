"""Deciding whether uploaded bytes are audio we are willing to decode, and bounding what decoding costs.

An upload is hostile until proven otherwise: its header can lie about the sample rate, the number of frames
or the size of its data, and a few kilobytes of FLAC or Ogg can expand to hours of samples. So the container
is allow-listed by its magic bytes *before* libsndfile parses it, and the duration is measured by decoding
in fixed-size blocks and stopping as soon as the limit is passed, never by believing the header.

`open_audio` is the one implementation of that bounded decode; `inspect_audio` and `decode.decode_to_mono`
both consume its blocks.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import soundfile as sf

RejectCode = Literal[
    "empty_file",
    "too_large",
    "not_audio",
    "unsupported_format",
    "truncated",
    "bad_sample_rate",
    "bad_channels",
    "too_long",
    "decode_failed",
]

#: Containers we decode; everything else is refused before libsndfile's parsers ever see it.
ALLOWED_FORMATS: frozenset[str] = frozenset({"WAV", "FLAC", "OGG", "MP3"})
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8

#: Frames decoded per read: 32k frames x 8 channels x 4 bytes = 1 MiB at most in flight.
BLOCK_FRAMES = 1 << 15
#: Below this share of the frames the header promised, the file was cut short in transit.
TRUNCATION_RATIO = 0.9

_STATUS: dict[str, int] = {"too_large": 413, "not_audio": 415, "unsupported_format": 415}
#: libsndfile's "cannot decode this encoding" errors (SF_ERR_UNSUPPORTED_ENCODING, SFE_UNIMPLEMENTED).
_UNSUPPORTED_ENCODING_ERRORS = frozenset({4, 18})
_UNRECOGNISED_FORMAT_ERROR = 1
#: libsndfile reports an unknown length as a huge count; such a count is no promise to check against.
_UNKNOWN_FRAMES = 1 << 62
#: RIFF writers that cannot seek back leave these in the size field; they mean "unknown", not a lie.
_UNKNOWN_RIFF_SIZES = frozenset({0xFFFFFFFF})
_MAX_RIFF_CHUNKS = 256

#: Audio containers that are recognisable but not on the allow-list (415 unsupported, not 415 not-audio).
_OTHER_AUDIO_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"FORM"),  # AIFF, AIFC, 8SVX
    (0, b".snd"),  # AU
    (0, b"caff"),  # Core Audio
    (0, b"RIFX"),  # big-endian WAV
    (0, b"riff"),  # Sony Wave64
    (0, b"NIST_1A"),
    (0, b"Creative Voice File"),
    (0, b"#!AMR"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska/WebM: what browsers' MediaRecorder produces
    (0, b"\x30\x26\xb2\x75"),  # ASF/WMA
    (4, b"ftyp"),  # MP4/M4A: phone voice memos
)


class AudioRejected(ValueError):
    """An upload we refuse, carrying the machine-readable `code` and the HTTP `status` the edge answers."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code: RejectCode = code
        self.status: int = _STATUS.get(code, 422)
        self.message = message

    def __repr__(self) -> str:
        return f"AudioRejected(code={self.code!r}, status={self.status}, message={self.message!r})"


@dataclass(frozen=True)
class AudioInfo:
    """What decoding found; `frames` and `duration_s` are counted from decoded samples, not the header."""

    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float


@dataclass(frozen=True)
class _RiffHeader:
    """The few WAV header fields we check ourselves, because libsndfile silently clamps or refuses them."""

    channels: int
    sample_rate: int
    declared_data_bytes: int
    present_data_bytes: int


class AudioStream:
    """An opened, header-checked upload whose `blocks()` stop at the duration limit.

    Build it with `open_audio`; it exists so that validation and decoding share one bounded read loop.
    """

    def __init__(self, file: sf.SoundFile, fmt: str, max_seconds: float) -> None:
        self._file = file
        self.format = fmt
        self.subtype: str = file.subtype
        self.sample_rate: int = file.samplerate
        self.channels: int = file.channels
        self._max_frames = math.floor(max_seconds * self.sample_rate)
        self._decoded = 0
        self._finished = False

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield float32 blocks shaped (frames, channels) until the data ends or the limit is passed.

        One buffer is reused for every block, so memory stays at one block whatever the file claims:
        a yielded block is only valid until the next one is requested; copy it to keep it.
        Reading into `out=` stops soundfile from sizing reads by the header's frame count; libsndfile
        itself still never returns more than its own `frames` (which, for WAV, it clamps to the bytes
        present), so a header can shorten what we decode but never lengthen it.
        """
        buffer = np.empty((BLOCK_FRAMES, self.channels), dtype=np.float32)
        while True:
            # Ask for one frame past the limit at most, so "too long" is detected without decoding more.
            wanted = min(BLOCK_FRAMES, self._max_frames + 1 - self._decoded)
            block = self._read_into(buffer[:wanted])
            if len(block) == 0:
                break
            self._decoded += len(block)
            if self._decoded > self._max_frames:
                limit = self._max_frames / self.sample_rate
                raise AudioRejected("too_long", f"The audio is longer than the {limit:g} s limit.")
            yield block
        self._check_complete()
        self._finished = True

    def info(self) -> AudioInfo:
        """The decoded facts; only meaningful once `blocks()` has been run to the end."""
        if not self._finished:
            raise RuntimeError("AudioStream.info() called before blocks() was exhausted")
        return AudioInfo(
            format=self.format,
            subtype=self.subtype,
            sample_rate=self.sample_rate,
            channels=self.channels,
            frames=self._decoded,
            duration_s=self._decoded / self.sample_rate,
        )

    def _read_into(self, out: np.ndarray) -> np.ndarray:
        """libsndfile reports corrupt data mid-stream as an error; that is the uploader's fault, not ours."""
        try:
            return self._file.read(out=out)
        except sf.SoundFileRuntimeError as exc:
            raise AudioRejected("decode_failed", f"The audio could not be decoded: {_reason(exc)}.") from exc

    def _check_complete(self) -> None:
        """Zero frames, or far fewer than the container promised, means the upload was cut short."""
        declared = self._file.frames
        if self._decoded == 0:
            if 0 < declared < _UNKNOWN_FRAMES:
                raise AudioRejected("truncated", "The file declares audio but none of it is present.")
            raise AudioRejected("empty_file", "The file contains no audio.")
        if 0 < declared < _UNKNOWN_FRAMES and self._decoded < TRUNCATION_RATIO * declared:
            raise AudioRejected(
                "truncated", f"Only {self._decoded} of the {declared} declared frames could be decoded."
            )


@contextmanager
def open_audio(data: bytes, *, max_bytes: int | None, max_seconds: float) -> Iterator[AudioStream]:
    """Check size, container and header, then open the upload for bounded block decoding.

    `max_bytes=None` skips the size check for callers that receive bytes the edge has already measured.
    """
    if not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    if max_bytes is not None and len(data) > max_bytes:
        raise AudioRejected("too_large", f"The file is {len(data)} bytes; the limit is {max_bytes} bytes.")
    if not data:
        raise AudioRejected("empty_file", "The file is empty.")
    fmt = _sniff_container(data)
    if fmt == "WAV":
        _check_riff(data)
    with _open_soundfile(data) as file:
        fmt = _normalise_format(file.format)
        if fmt not in ALLOWED_FORMATS:
            raise AudioRejected("unsupported_format", f"{fmt} audio is not accepted.")
        _check_rate_and_channels(file.samplerate, file.channels)
        yield AudioStream(file, fmt, max_seconds)


def inspect_audio(data: bytes, *, max_bytes: int, max_seconds: float) -> AudioInfo:
    """Validate an upload by decoding all of it (in bounded blocks) and discarding the samples.

    Decoding everything is the only way to know the real duration and that the file is not corrupt past
    its header; it costs CPU proportional to the (capped) duration but memory of one block.
    """
    with open_audio(data, max_bytes=max_bytes, max_seconds=max_seconds) as stream:
        for _ in stream.blocks():
            pass
        return stream.info()


@contextmanager
def _open_soundfile(data: bytes) -> Iterator[sf.SoundFile]:
    """Translate libsndfile's open errors into rejections; the numeric codes are its public ones."""
    try:
        file = sf.SoundFile(io.BytesIO(data))
    except sf.LibsndfileError as exc:
        if exc.code == _UNRECOGNISED_FORMAT_ERROR:
            raise AudioRejected("not_audio", "The file is not recognisable audio.") from exc
        if exc.code in _UNSUPPORTED_ENCODING_ERRORS:
            raise AudioRejected("unsupported_format", f"Unsupported audio encoding: {_reason(exc)}.") from exc
        raise AudioRejected("decode_failed", f"The audio could not be decoded: {_reason(exc)}.") from exc
    with file:
        yield file


def _reason(exc: sf.SoundFileRuntimeError) -> str:
    """libsndfile's own wording, without the BytesIO repr soundfile prefixes it with."""
    text = getattr(exc, "error_string", "") or str(exc)
    return text.strip().rstrip(".")


def _normalise_format(fmt: str) -> str:
    """WAVE_FORMAT_EXTENSIBLE and RF64 are WAV to anyone uploading them."""
    return "WAV" if fmt in {"WAVEX", "RF64"} else fmt


def _sniff_container(data: bytes) -> str:
    """Name the allow-listed container from magic bytes, so other parsers in libsndfile never run."""
    if data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return "WAV"
    if data[:4] == b"fLaC":
        return "FLAC"
    if data[:4] == b"OggS":
        return "OGG"
    if data[:3] == b"ID3" or _is_mpeg_audio_frame(data[:4]):
        return "MP3"
    if _is_other_audio(data):
        raise AudioRejected(
            "unsupported_format", "This audio format is not accepted; use WAV, FLAC, Ogg or MP3."
        )
    raise AudioRejected("not_audio", "The file is not recognisable audio.")


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits and no reserved version, layer, bitrate or rate values."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0b00 and bitrate != 0b1111 and rate != 0b11


def _is_other_audio(data: bytes) -> bool:
    """Known audio we refuse: answering 415 "unsupported" tells the client to convert, not to give up."""
    if any(data[offset : offset + len(magic)] == magic for offset, magic in _OTHER_AUDIO_MAGIC):
        return True
    # AAC in ADTS framing: MPEG sync word with the layer bits at zero.
    return len(data) >= 2 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0


def _check_riff(data: bytes) -> None:
    """Check the WAV header ourselves: libsndfile clamps a lying data size to the file without telling,
    and refuses a 4 GHz rate with a generic "SF_INFO incomplete", losing the reason."""
    header = _parse_riff(data)
    _check_rate_and_channels(header.sample_rate, header.channels)
    declared = header.declared_data_bytes
    if declared not in _UNKNOWN_RIFF_SIZES and header.present_data_bytes < TRUNCATION_RATIO * declared:
        raise AudioRejected(
            "truncated",
            f"The header declares {declared} bytes of audio; only {header.present_data_bytes} are present.",
        )


def _parse_riff(data: bytes) -> _RiffHeader:
    """Walk the RIFF chunks up to `data`; a file that ends first was cut short."""
    offset, fmt_chunk = 12, None
    for _ in range(_MAX_RIFF_CHUNKS):
        if offset + 8 > len(data):
            break
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            fmt_chunk = data[body : body + min(size, 16)]
        elif chunk_id == b"data":
            if fmt_chunk is None or len(fmt_chunk) < 16:
                raise AudioRejected(
                    "decode_failed", "The WAV file has no valid 'fmt ' chunk before its data."
                )
            channels, sample_rate = struct.unpack_from("<HI", fmt_chunk, 2)
            return _RiffHeader(channels, sample_rate, size, max(0, min(size, len(data) - body)))
        offset = body + size + (size & 1)  # chunks are padded to even length
    else:
        raise AudioRejected("decode_failed", "The WAV file has too many chunks before its data.")
    raise AudioRejected("truncated", "The WAV file ends before its audio data begins.")


def _check_rate_and_channels(sample_rate: int, channels: int) -> None:
    """Out-of-range values are either forged or useless for speech, and both bound our memory use."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioRejected(
            "bad_sample_rate",
            f"Sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz.",
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioRejected("bad_channels", f"{channels} channels is outside 1..{MAX_CHANNELS}.")
