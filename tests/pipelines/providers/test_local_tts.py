"""Piper voice: int16 audio, one chunk per sentence, nothing for empty text."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.providers.base import TextToSpeech
from pipelines.providers.local_tts import PiperTextToSpeech, voice_paths

pytestmark = pytest.mark.models


def test_bundled_voice_files_exist() -> None:
    model, config = voice_paths()
    assert model.is_file()
    assert config.is_file()


def test_sample_rate_comes_from_the_voice_config(tts: TextToSpeech) -> None:
    assert tts.name == "local"
    assert tts.sample_rate == 22_050


def test_stream_yields_one_int16_chunk_per_sentence(tts: TextToSpeech) -> None:
    chunks = list(tts.stream("The sun is out. Take a hat with you!"))
    assert len(chunks) == 2
    for chunk in chunks:
        assert chunk.dtype == np.int16
        assert chunk.ndim == 1
        assert len(chunk) > tts.sample_rate // 4
        assert np.abs(chunk.astype(np.int32)).max() > 1000  # not silence


def test_synthesize_concatenates_the_sentences(tts: TextToSpeech) -> None:
    speech = tts.synthesize("Hello. Goodbye.")
    assert speech.sample_rate == tts.sample_rate
    assert speech.samples.dtype == np.int16
    assert 0.5 < speech.duration_s < 5.0


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_yields_nothing(tts: TextToSpeech, text: str) -> None:
    assert list(tts.stream(text)) == []
    assert tts.synthesize(text).duration_s == 0.0


def test_without_noise_the_voice_is_repeatable() -> None:
    steady = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    first, again = steady.synthesize("Good morning."), steady.synthesize("Good morning.")
    np.testing.assert_array_equal(first.samples, again.samples)
