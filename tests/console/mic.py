"""What the fake microphone says: utterances spoken by espeak-ng (a voice none of the models were tuned
on), laid out one after another in one 48 kHz WAV for Chromium's `--use-file-for-fake-audio-capture`.

The page's scripted microphone (`js/scripted-mic.js`) plays spans of that recording when the test says
so, so each utterance's span in seconds is returned with the file.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.services import unavailable

RATE = 48_000
LEAD_S, GAP_S, TAIL_S = 0.5, 1.0, 30.0


@dataclass(frozen=True)
class Script:
    path: Path
    spans: dict[str, tuple[float, float]]  # utterance -> [start, end) seconds, 0.3 s of silence around


def espeak(text: str, directory: Path) -> np.ndarray:
    """`text` as espeak-ng says it (US English, a little slower than its default), float32 at 48 kHz."""
    import soundfile
    import soxr

    if shutil.which("espeak-ng") is None:
        unavailable("espeak-ng is not installed (apt-get install -y espeak-ng)")
    out = directory / f"espeak-{abs(hash(text)):x}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "145", "-w", str(out), text], check=True, timeout=30)
    samples, rate = soundfile.read(out, dtype="float32")
    return soxr.resample(samples, rate, RATE).astype(np.float32)


def script(directory: Path, **utterances: str) -> Script:
    """One recording holding each utterance in turn, and where each one lies in it."""
    import soundfile

    directory.mkdir(parents=True, exist_ok=True)
    parts, spans, at = [np.zeros(int(RATE * LEAD_S), np.float32)], {}, LEAD_S
    for name, text in utterances.items():
        speech = espeak(text, directory)
        spans[name] = (round(at - 0.3, 3), round(at + len(speech) / RATE + 0.3, 3))
        parts += [speech, np.zeros(int(RATE * GAP_S), np.float32)]
        at += len(speech) / RATE + GAP_S
    parts.append(np.zeros(int(RATE * TAIL_S), np.float32))
    path = directory / "mic.wav"
    soundfile.write(path, np.concatenate(parts), RATE, subtype="PCM_16")
    return Script(path, spans)


def piper_question(speech: Any, directory: Path, text: str = "What is the capital of France?") -> Path:
    """For the console, which takes the fake device as it is: one question in the piper voice, then 40 s
    of silence, because Chromium loops the file and the next repetition would interrupt the reply (a turn
    takes over 10 s on a loaded CI machine)."""
    import soundfile
    import soxr

    samples, rate = soundfile.read(speech.wav(text, silence_s=0.5), dtype="float32")
    padded = np.concatenate([soxr.resample(samples, rate, RATE), np.zeros(RATE * 40, dtype=np.float32)])
    path = directory / "question.wav"
    soundfile.write(path, padded, RATE, subtype="PCM_16")
    return path
