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
        from pipelines.providers.local_tts import PiperTextToSpeech

        return PiperTextToSpeech()

    def samples(self, text: str) -> tuple[np.ndarray, int]:
        speech = self.tts.synthesize(text)
        return speech.samples, speech.sample_rate

    def wav(self, text: str, *, fmt: str = "WAV", silence_s: float = 0.3) -> Path:
        path = self.directory / f"{hashlib.sha1(f'{text}|{fmt}'.encode()).hexdigest()[:12]}.{fmt.lower()}"
        if not path.exists():
            samples, rate = self.samples(text)
            pad = np.zeros(int(rate * silence_s), dtype=np.int16)
            soundfile.write(path, np.concatenate([pad, samples, pad]), rate, format=fmt)
        return path
