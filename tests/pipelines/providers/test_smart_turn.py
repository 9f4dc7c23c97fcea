"""Smart Turn v3.2 from the installed pipecat-ai wheel: found, verified, fed Whisper features, answering."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import soxr

from pipelines.providers.smart_turn import MODEL_SHA256, SmartTurn, log_mel, model_path


def test_the_model_file_is_the_pinned_one_and_pipecat_is_never_imported() -> None:
    path = model_path()
    assert path.name == "smart-turn-v3.2-cpu.onnx" and path.stat().st_size > 8_000_000
    assert len(MODEL_SHA256) == 64
    assert "pipecat" not in sys.modules


def test_features_are_whisper_log_mels_of_the_last_8_seconds() -> None:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16_000 * 10) * 0.1).astype(np.float32)
    mel = log_mel(audio)
    assert mel.shape == (80, 800) and mel.dtype == np.float32
    assert mel.max() - mel.min() <= 2.0 + 1e-6  # clamped to 8 decades below the peak, scaled by 1/4
    assert np.array_equal(mel, log_mel(audio[-16_000 * 8 :]))  # only the last 8 s count
    short = log_mel(audio[:16_000])  # left-padded with silence: the end of the turn stays at the end
    assert short.shape == (80, 800) and np.ptp(short[:, :600]) < np.ptp(short[:, -100:]) + 1e-6


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_probability_on_speech(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wav = tmp_path / "q.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "How tall is Mount Everest?"], check=True)
    audio, rate = sf.read(wav, dtype="float32")
    audio = soxr.resample(audio, rate, 16_000).astype(np.float32)
    audio = np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(16 * 300, np.float32)])
    p = SmartTurn().probability(audio)
    assert 0.0 <= p <= 1.0
    assert p > 0.5  # a whole question followed by a pause; the verdict's other half is the words
