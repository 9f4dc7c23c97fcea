from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from pipelines.audio.decode import decode_to_mono
from pipelines.audio.encode import CONTENT_TYPES, encode, resample
from tests.pipelines.audio import corpus


def test_content_types() -> None:
    assert dict(CONTENT_TYPES) == {
        "wav": "audio/wav",
        "flac": "audio/flac",
        "ogg": "audio/ogg",
        "pcm": "audio/pcm",
    }


@pytest.mark.parametrize(
    ("fmt", "container", "subtype"),
    [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS")],
)
def test_containers_and_codecs(fmt: str, container: str, subtype: str) -> None:
    info = sf.info(io.BytesIO(encode(corpus.tone(0.25, 22_050)[:, 0], 22_050, fmt)))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (container, subtype, 22_050, 1)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
@pytest.mark.parametrize("rate", [16_000, 22_050, 48_000])
def test_round_trip_keeps_length(fmt: str, dtype: type, rate: int) -> None:
    samples = corpus.tone(0.7, rate)[:, 0]
    if dtype is np.int16:
        samples = (samples * 32767).astype(np.int16)
    decoded = decode_to_mono(encode(samples, rate, fmt), target_rate=rate, max_seconds=10)
    assert len(decoded) == len(samples)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_int16_is_lossless_in_wav_and_flac(fmt: str) -> None:
    samples = np.random.default_rng(0).integers(-32768, 32768, 4000).astype(np.int16)
    decoded, _ = sf.read(io.BytesIO(encode(samples, 16_000, fmt)), dtype="int16")
    assert np.array_equal(decoded, samples)


def test_stereo_is_kept() -> None:
    info = sf.info(io.BytesIO(encode(corpus.tone(0.1, 16_000, channels=2), 16_000, "wav")))
    assert info.channels == 2


def test_out_of_range_floats_clip_instead_of_wrapping() -> None:
    """libsndfile would wrap 1.5 to a large negative sample; we clip first."""
    decoded, _ = sf.read(
        io.BytesIO(encode(np.array([1.5, -1.5, 0.5], np.float32), 16_000, "wav")), dtype="int16"
    )
    assert decoded.tolist() == [32767, -32768, 16384]


def test_pcm_is_raw_little_endian_int16() -> None:
    assert encode(np.array([1, -2, 256], np.int16), 16_000, "pcm") == b"\x01\x00\xfe\xff\x00\x01"
    assert encode(np.array([0.5, -1.0], np.float32), 16_000, "pcm") == b"\x00\x40\x00\x80"


def test_long_ogg_is_written_in_chunks() -> None:
    """One 5-million-frame write overflows libvorbis's stack and kills the process (libsndfile #1095)."""
    data = encode(np.zeros(corpus.BOMB_RATE * corpus.BOMB_SECONDS, np.float32), corpus.BOMB_RATE, "ogg")
    assert sf.info(io.BytesIO(data)).frames == corpus.BOMB_RATE * corpus.BOMB_SECONDS


@pytest.mark.parametrize(
    ("samples", "rate", "fmt", "error"),
    [
        (np.zeros(0, np.float32), 16_000, "wav", ValueError),
        (np.zeros((2, 2, 2), np.float32), 16_000, "wav", ValueError),
        (np.zeros(10, np.float32), 7_999, "wav", ValueError),
        (np.zeros(10, np.float32), 250_000, "ogg", ValueError),
        (np.zeros(10, np.float32), 16_000, "mp3", ValueError),
        (np.zeros(10, np.int32), 16_000, "wav", TypeError),
    ],
)
def test_refuses_bad_input(samples: np.ndarray, rate: int, fmt: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode(samples, rate, fmt)


def test_resample_int16_stays_int16_and_clips() -> None:
    square = np.where(np.arange(16_000) % 40 < 20, 32767, -32768).astype(np.int16)
    out = resample(square, 16_000, 44_100)
    assert out.dtype == np.int16
    assert len(out) == 44_100
    assert out.max() == 32767 and out.min() == -32768  # ringing clipped, not wrapped


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resample_float_keeps_dtype_and_length(dtype: type) -> None:
    out = resample(corpus.tone(1.0, 48_000)[:, 0].astype(dtype), 48_000, 16_000)
    assert out.dtype == dtype
    assert len(out) == 16_000


def test_resample_stereo_and_identity() -> None:
    stereo = corpus.tone(0.5, 22_050, channels=2)
    assert resample(stereo, 22_050, 16_000).shape == (8_000, 2)
    same = resample(stereo, 22_050, 22_050)
    assert np.array_equal(same, stereo) and same is not stereo


def test_resample_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError):
        resample(np.zeros(10, np.int32), 16_000, 8_000)
    with pytest.raises(ValueError):
        resample(np.zeros(10, np.float32), 0, 8_000)
