from __future__ import annotations

import numpy as np
import pytest

from pipelines.audio.decode import decode_to_mono
from pipelines.audio.validation import ALLOWED_FORMATS, AudioRejected
from tests.pipelines.audio import corpus

MAX_SECONDS = 600.0


def decode(data: bytes, *, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    return decode_to_mono(data, target_rate=16_000, max_seconds=max_seconds)


@pytest.mark.parametrize("name", corpus.REJECTED)
def test_refuses_what_validation_refuses(name: str) -> None:
    build, code, _ = corpus.REJECTED[name]
    with pytest.raises(AudioRejected) as caught:
        decode(build())
    assert caught.value.code == code


def test_max_bytes_is_optional_and_enforced_when_given() -> None:
    with pytest.raises(AudioRejected) as caught:
        decode_to_mono(corpus.wav(), target_rate=16_000, max_seconds=MAX_SECONDS, max_bytes=100)
    assert caught.value.code == "too_large"


@pytest.mark.parametrize("container", sorted(ALLOWED_FORMATS))
@pytest.mark.parametrize("rate", corpus.RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_good_files_decode_to_16k_mono_float(container: str, rate: int, channels: int) -> None:
    samples = decode(corpus.good(container, rate, channels))
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == pytest.approx(16_000, rel=0.02)
    assert np.abs(samples).max() <= 1.0


def test_channels_are_averaged() -> None:
    stereo = np.stack([np.full(16_000, 0.5), np.full(16_000, -0.25)], axis=1).astype(np.float32)
    samples = decode(corpus.write(stereo, 16_000, "WAV", "FLOAT"))
    assert samples == pytest.approx(np.full(16_000, 0.125), abs=1e-6)


def test_resampling_keeps_the_pitch() -> None:
    samples = decode(corpus.good("WAV", 48_000, 1))
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * 16_000 / len(samples)
    assert peak_hz == pytest.approx(440, abs=2)


def test_same_rate_is_passed_through_sample_exact() -> None:
    tone = corpus.tone(0.5, 16_000)[:, 0]
    samples = decode(corpus.write(tone, 16_000, "WAV", "FLOAT"))
    assert np.array_equal(samples, tone)


def test_output_is_clipped_to_unit_range() -> None:
    """A full-scale square wave rings past 1.0 when resampled; the contract is [-1, 1]."""
    square = np.where(np.arange(44_100) % 100 < 50, 1.0, -1.0).astype(np.float32)
    samples = decode(corpus.write(square, 44_100, "WAV", "FLOAT"))
    assert np.abs(samples).max() <= 1.0


def test_duration_limit_applies_to_decoding_too() -> None:
    with pytest.raises(AudioRejected) as caught:
        decode(corpus.wav(seconds=2.0), max_seconds=1.0)
    assert caught.value.code == "too_long"
