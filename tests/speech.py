"""Test speech: questions spoken by the bundled piper voice, optionally padded with silence."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np
import soundfile


class Speaker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @cached_property
    def tts(self):
        """Piper without its random noise: one take in a few dozen of "capital of France" was heard as
        "capital of friends" by Whisper, and that one draw failed nine tests of a CI run."""
        from pipelines.providers.local_tts import PiperTextToSpeech

        return PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)

    def samples(self, text: str) -> tuple[np.ndarray, int]:
        speech = self.tts.synthesize(text)
        return speech.samples, speech.sample_rate

    def wav(self, text: str, *, fmt: str = "WAV", silence_s: float = 0.3) -> Path:
        key = hashlib.sha1(f"{text}|{fmt}|{silence_s}".encode()).hexdigest()[:12]
        path = self.directory / f"{key}.{fmt.lower()}"
        if not path.exists():
            samples, rate = self.samples(text)
            pad = np.zeros(int(rate * silence_s), dtype=np.int16)
            soundfile.write(path, np.concatenate([pad, samples, pad]), rate, format=fmt)
        return path
