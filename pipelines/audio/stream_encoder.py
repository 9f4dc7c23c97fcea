"""Encoding synthesized speech while it is still being synthesized, for streamed HTTP bodies.

`StreamEncoder.push()` takes int16 mono chunks (one sentence each) and returns the bytes that can be sent
now; `finish()` returns the rest. Everything is resampled to 24 kHz first, because that is the rate
OpenAI's speech API promises for every format (clients play raw `pcm` at 24 kHz without being told), and
Opus only accepts 8/12/16/24/48 kHz.

How each format streams:
- `pcm`: raw little-endian int16, chunk by chunk.
- `wav`: a RIFF header whose sizes say "unknown" (0xFFFFFFFF, as streaming writers do), then PCM.
- `opus` (Ogg/Opus) and `mp3`: libsndfile's encoders write pages/frames as they go; bytes are sent as
  soon as the encoder has produced them. The placeholder Xing/Info frame that LAME rewrites at the end
  (streamed, it is a frame of zeros) is dropped, and MP3 is constant-bitrate so that readers that
  estimate the length from the first frame (libsndfile does) get it right without that frame.
- `aac`: ADTS frames from FFmpeg's AAC encoder (`pipelines.audio.aac`, through PyAV), sent as they
  are made; each frame has its own header, so nothing is rewritten at the end.
- `flac`: sent whole at the end, because FLAC's STREAMINFO carries the total length, and decoders
  such as `soundfile.read` refuse a stream that leaves it unknown.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from pipelines.audio import aac

SpeechFormat = Literal["wav", "pcm", "flac", "mp3", "opus", "aac"]

#: The rate of every encoded output (OpenAI's speech API uses 24 kHz for all formats).
OUTPUT_RATE = 24_000

CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "wav": "audio/wav",
        "pcm": "audio/pcm",
        "flac": "audio/flac",
        "mp3": "audio/mpeg",
        "opus": "audio/ogg",
        "aac": "audio/aac",
    }
)

_LIBSNDFILE: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}
)
_UNKNOWN_SIZE = 0xFFFFFFFF
#: libvorbis/libopus size stack buffers by the frames of one write; keep writes small (see encode.py).
_WRITE_FRAMES = 4096


class UnsupportedFormat(ValueError):
    """The format is unknown, or this libsndfile build cannot encode it."""


def supported_formats() -> tuple[str, ...]:
    """The formats this process can produce; depends on the codecs libsndfile was built with."""
    available = []
    for fmt in CONTENT_TYPES:
        if fmt in _LIBSNDFILE:
            container, subtype = _LIBSNDFILE[fmt]
            if subtype not in sf.available_subtypes(container):
                continue
        if fmt == "aac" and not aac.available():
            continue
        available.append(fmt)
    return tuple(available)


def check_format(fmt: str) -> SpeechFormat:
    if fmt not in CONTENT_TYPES:
        raise UnsupportedFormat(f"unknown response_format {fmt!r}; use one of {', '.join(CONTENT_TYPES)}")
    if fmt not in supported_formats():
        lacking = "PyAV (`av`)" if fmt == "aac" else "libsndfile"
        raise UnsupportedFormat(f"response_format {fmt!r} is not available: {lacking} lacks its encoder")
    return fmt  # type: ignore[return-value]


def wav_stream_header(sample_rate: int, channels: int = 1) -> bytes:
    """A PCM16 RIFF header with unknown sizes, for a WAV whose length is not known when it starts."""
    block_align = 2 * channels
    fmt_chunk = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * block_align, block_align, 16)
    return (
        b"RIFF" + struct.pack("<I", _UNKNOWN_SIZE) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
        + b"data" + struct.pack("<I", _UNKNOWN_SIZE)
    )  # fmt: skip


class _Sink(io.RawIOBase):
    """A seekable in-memory file for libsndfile that remembers how much of it has been sent."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = io.BytesIO()
        self._sent = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        return self._buffer.write(data)

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._buffer.seek(offset, whence)

    def tell(self) -> int:
        return self._buffer.tell()

    def take(self) -> bytes:
        """Bytes appended since the last call; later rewrites of sent bytes are lost (see module doc)."""
        data = self._buffer.getbuffer()[self._sent :].tobytes()
        self._sent += len(data)
        return data

    def everything(self) -> bytes:
        return self._buffer.getvalue()


def _mp3_frame_length(header: bytes) -> int | None:
    """Length in bytes of the MPEG audio layer III frame starting with `header`, or None."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 0b11  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    bitrate_index, rate_index, padding = header[2] >> 4, (header[2] >> 2) & 0b11, (header[2] >> 1) & 1
    if version == 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None
    mpeg1 = version == 3
    bitrates = (
        (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
        if mpeg1
        else (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
    )
    rates = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}[version]
    coefficient = 144 if mpeg1 else 72
    return coefficient * bitrates[bitrate_index] * 1000 // rates[rate_index] + padding


def _drop_xing_frame(data: bytes) -> bytes:
    """Remove a leading Xing/Info tag frame: streamed, it still holds LAME's placeholder values."""
    length = _mp3_frame_length(data[:4])
    if not length or len(data) < length:
        return data
    tagged = b"Xing" in data[4:40] or b"Info" in data[4:40]
    if tagged or not any(data[4:length]):  # streamed, LAME's tag frame is still all zeros
        return data[length:]
    return data


class StreamEncoder:
    """Encode int16 mono chunks at `input_rate` into `fmt` at 24 kHz, yielding bytes as they are ready."""

    def __init__(self, fmt: str, input_rate: int) -> None:
        self.format = check_format(fmt)
        self.content_type = CONTENT_TYPES[self.format]
        self._resampler = (
            None
            if input_rate == OUTPUT_RATE
            else soxr.ResampleStream(input_rate, OUTPUT_RATE, 1, dtype="float32")
        )
        self._started = False
        self._head_pending = self.format == "mp3"
        self._held = b""
        self._sink: _Sink | None = None
        self._file: sf.SoundFile | None = None
        self._aac = aac.AacEncoder(OUTPUT_RATE) if self.format == "aac" else None
        if self.format in _LIBSNDFILE:
            container, subtype = _LIBSNDFILE[self.format]
            self._sink = _Sink()
            # Constant bitrate for MP3: without the Xing frame, readers estimate the length from the
            # first frame's bitrate, which is wrong for VBR. 0.5 is about 80 kbit/s at 24 kHz mono.
            extra = {"bitrate_mode": "CONSTANT", "compression_level": 0.5} if self.format == "mp3" else {}
            self._file = sf.SoundFile(
                self._sink, "w", OUTPUT_RATE, 1, format=container, subtype=subtype, **extra
            )

    def push(self, samples: np.ndarray) -> bytes:
        """Encode one chunk; returns the bytes that may be sent now (possibly none)."""
        floats = np.asarray(samples, dtype=np.float32) / np.float32(32768.0)
        if self._resampler is not None:
            floats = self._resampler.resample_chunk(floats)
        return self._encode(floats, last=False)

    def finish(self) -> bytes:
        """Flush the resampler and the encoder; returns the last bytes of the stream."""
        tail = np.empty(0, dtype=np.float32)
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(tail, last=True)
        return self._encode(tail, last=True)

    def _encode(self, floats: np.ndarray, *, last: bool) -> bytes:
        pcm = np.clip(np.rint(floats * 32768.0), -32768, 32767).astype("<i2")
        if self.format == "pcm":
            return pcm.tobytes()
        if self.format == "wav":
            head = b"" if self._started else wav_stream_header(OUTPUT_RATE)
            self._started = True
            return head + pcm.tobytes()
        if self._aac is not None:
            data = self._aac.push(pcm)
            return data + self._aac.finish() if last else data
        assert self._file is not None and self._sink is not None
        for start in range(0, len(pcm), _WRITE_FRAMES):
            self._file.write(pcm[start : start + _WRITE_FRAMES])
        if last:
            self._file.close()
        if self.format == "flac":
            return self._sink.everything() if last else b""
        data = self._sink.take()
        if self._head_pending:
            self._held += data
            if len(self._held) < 2048 and not last:
                return b""  # wait until the first frame is complete before deciding to drop it
            data, self._held, self._head_pending = _drop_xing_frame(self._held), b"", False
        return data
