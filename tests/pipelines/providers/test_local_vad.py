"""Silero VAD v6 over onnxruntime, one frame at a time."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.vad import SileroVADModel

from pipelines.providers.local_vad import SileroVAD, silero_model_path

pytestmark = pytest.mark.models

FRAME = 512


def _frames(audio: np.ndarray) -> np.ndarray:
    usable = len(audio) // FRAME * FRAME
    return audio[:usable].reshape(-1, FRAME)


def _probabilities(vad: SileroVAD, audio: np.ndarray) -> np.ndarray:
    return np.array([vad.probability(frame) for frame in _frames(audio)])


def test_frame_format() -> None:
    vad = SileroVAD()
    assert vad.frame_samples == FRAME
    assert vad.sample_rate == 16_000


def test_speech_scores_high(question_16k: np.ndarray) -> None:
    probabilities = _probabilities(SileroVAD(), question_16k)
    assert probabilities.max() > 0.5
    assert (probabilities > 0.5).mean() > 0.5  # most of a spoken sentence is speech


def test_silence_scores_low() -> None:
    probabilities = _probabilities(SileroVAD(), np.zeros(16_000 * 2, dtype=np.float32))
    assert probabilities.max() < 0.2


@pytest.mark.parametrize("level", [0.001, 0.01])
def test_low_level_white_noise_scores_low(level: float) -> None:
    noise = np.random.default_rng(0).normal(0.0, level, 16_000 * 3).astype(np.float32)
    probabilities = _probabilities(SileroVAD(), noise)
    assert probabilities.max() < 0.2


def test_streaming_matches_faster_whisper_batch(question_16k: np.ndarray) -> None:
    """The state and the 64-sample context carried between calls are exactly what the batch call does."""
    audio = np.concatenate([np.zeros(4096, np.float32), question_16k, np.zeros(4096, np.float32)])
    audio = audio[: len(audio) // FRAME * FRAME]
    streamed = _probabilities(SileroVAD(), audio)
    batch = np.asarray(SileroVADModel(str(silero_model_path()))(audio)).ravel()
    np.testing.assert_allclose(streamed, batch, atol=1e-5)


def test_reset_starts_the_stream_over(question_16k: np.ndarray) -> None:
    vad = SileroVAD()
    first = _probabilities(vad, question_16k[: FRAME * 20])
    vad.reset()
    again = _probabilities(vad, question_16k[: FRAME * 20])
    np.testing.assert_array_equal(first, again)


def test_sessions_are_shared_but_state_is_not(question_16k: np.ndarray) -> None:
    speaking, silent = SileroVAD(), SileroVAD()
    assert speaking._session is silent._session
    _probabilities(speaking, question_16k)
    assert silent.probability(np.zeros(FRAME, np.float32)) < 0.2


@pytest.mark.parametrize(
    "frame", [np.zeros(480, np.float32), np.zeros((1, FRAME), np.float32), np.zeros(FRAME, np.int16)]
)
def test_refuses_malformed_frames(frame: np.ndarray) -> None:
    with pytest.raises(ValueError):
        SileroVAD().probability(frame)
