"""The independent test split, spoken by two voices and transcribed by the bundled Whisper.

Voices: piper (joe-medium, the product's own TTS) and espeak-ng (a formant synthesiser the models were not
tuned on; FACTS measures Whisper's WER on it at 11-15 %). Transcripts are cached in bench/data/ with the
text they came from, so the bench reruns in seconds; `--resynthesize` speaks everything again.

Whisper is prompted as the product prompts it for a turn addressed to the Assistant (its tools' words,
`pipelines.agents.vocabulary`); each row keeps the prompt it was transcribed with, and a cache made with
another prompt is made again. `prompt=None` transcribes unprompted (the figures before the prompt).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from pipelines.providers.local_stt import WhisperSpeechToText
from pipelines.providers.local_tts import PiperTextToSpeech

RATE = 16_000


def _piper(tts: PiperTextToSpeech, text: str) -> np.ndarray:
    speech = tts.synthesize(text)
    audio = speech.samples.astype(np.float32) / 32768.0
    return soxr.resample(audio, speech.sample_rate, RATE).astype(np.float32)


def _espeak(text: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", wav.name, text], check=True)
        audio, rate = sf.read(wav.name, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return soxr.resample(audio * 0.9, rate, RATE).astype(np.float32)


def spoken_rows(
    rows: list[dict[str, Any]], cache: Path, *, prompt: str | None, refresh: bool = False
) -> list[dict[str, Any]]:
    """`rows` once per voice, with "text" replaced by Whisper's transcript (and "written" and the
    "prompt" Whisper was given kept)."""
    if cache.exists() and not refresh:
        cached = [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
        same_prompt = all(r.get("prompt") == prompt for r in cached)
        if same_prompt and {r["written"] for r in cached} == {r["text"] for r in rows}:
            return cached
    stt = WhisperSpeechToText()
    tts = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)  # repeatable audio
    voices = {"piper": lambda text: _piper(tts, text)}
    if shutil.which("espeak-ng"):
        voices["espeak-ng"] = _espeak
    else:
        print("espeak-ng is not installed (apt-get install espeak-ng): piper only")
    out: list[dict[str, Any]] = []
    for voice, speak in voices.items():
        for row in rows:
            heard = stt.transcribe(speak(row["text"]), prompt=prompt).text.strip()
            out.append(row | {"text": heard, "written": row["text"], "voice": voice, "prompt": prompt})
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(r) + "\n" for r in out))
    return out
