"""Streamed speech encodings decode back to the audio that went in, whichever way they were cut."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from pipelines.audio.stream_encoder import OUTPUT_RATE, StreamEncoder, UnsupportedFormat, check_format
from pipelines.audio.validation import inspect_audio


def tone(seconds: float, rate: int = 22_050) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 330 * t) * 32767).astype(np.int16)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_streamed_containers_decode_to_the_whole_signal(fmt: str) -> None:
    encoder = StreamEncoder(fmt, 22_050)
    pieces = [encoder.push(tone(0.7)) for _ in range(3)]
    pieces.append(encoder.finish())
    data = b"".join(pieces)
    if fmt in ("wav", "opus", "mp3"):
        assert sum(map(len, pieces[:2])) > 0, "the first sentences should be sent before the end"
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    assert rate == OUTPUT_RATE
    assert abs(len(samples) / rate - 2.1) < 0.15, len(samples) / rate
    info = inspect_audio(data, max_bytes=10**7, max_seconds=60)
    assert abs(info.duration_s - 2.1) < 0.15


def test_pcm_is_raw_int16_at_24khz() -> None:
    encoder = StreamEncoder("pcm", 22_050)
    data = encoder.push(tone(1.0)) + encoder.finish()
    assert len(data) % 2 == 0 and abs(len(data) / 2 - OUTPUT_RATE) < 50


def test_unknown_format_is_refused() -> None:
    with pytest.raises(UnsupportedFormat):
        check_format("m4a")


def aac_seconds(data: bytes) -> tuple[float, int]:
    """Decode ADTS AAC with FFmpeg (PyAV): seconds of audio and the sample rate."""
    import av

    with av.open(io.BytesIO(data), format="aac") as container:
        frames = list(container.decode(audio=0))
    return sum(f.samples for f in frames) / frames[0].sample_rate, frames[0].sample_rate


def test_aac_streams_adts_frames_as_it_goes() -> None:
    encoder = StreamEncoder("aac", 22_050)
    assert encoder.content_type == "audio/aac"
    pieces = [encoder.push(tone(0.7)) for _ in range(3)]
    pieces.append(encoder.finish())
    assert pieces[0][:2] == b"\xff\xf1", "ADTS sync word, MPEG-4 AAC, no CRC"
    assert sum(map(len, pieces[:2])) > 0, "the first sentences should be sent before the end"
    seconds, rate = aac_seconds(b"".join(pieces))
    assert rate == OUTPUT_RATE
    assert abs(seconds - 2.1) < 0.15, seconds
