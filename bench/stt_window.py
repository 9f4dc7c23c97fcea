"""Whisper's short window against its ordinary 30 s window, side by side on the same speech: word error
rate and time per clip.

    python -m bench.stt_window [--voice piper|espeak] [--takes 3] [--windows 10,20] [--tail-ms 250]

The realtime path transcribes short turns in a shorter window (`Settings.realtime_stt_window_s`);
this is the evidence that it keeps the words while cutting the time, measured in one run so the ratio
holds on a noisy machine. `--voice espeak` speaks the sentences with three espeak-ng voices (en-us,
en-gb, en-us+f3), none of which the product was tuned on; each clip gets the silence tail a live
session gives Whisper (`--tail-ms`, as `pipelines/realtime/input_items.STT_TAIL_SAMPLES`).
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import time

import numpy as np
import soxr
from rich.console import Console
from rich.table import Table

from pipelines.providers.local_stt import WhisperSpeechToText
from pipelines.providers.local_tts import PiperTextToSpeech

SENTENCES = [
    "What is the capital of France?",
    "Tell me a fun fact about cats.",
    "How many days are in a week?",
    "What color is the sky?",
    "Can you recommend a good book?",
    "Say hello to my friend Anna.",
    "What should I cook for dinner tonight?",
    "Why do leaves change color in autumn?",
    "What time zone is London in?",
    "What is the weather like in Paris today?",
    "Please book a table for four people at seven thirty tonight.",
    "My order number is four five six and it has not arrived yet.",
    "I would like to cancel my subscription and get a refund.",
    "Can you transfer me to someone in billing?",
    "Turn off the lights in the kitchen and lock the front door.",
    "Remind me to call my mother tomorrow morning at nine.",
    "How far is it from Berlin to Munich by train?",
    "The meeting has been moved to Thursday afternoon.",
    "I need a taxi to the airport as soon as possible.",
    "What is the difference between a virus and a bacterium?",
]

NUMBER_WORDS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
    "7": "seven", "8": "eight", "9": "nine", "30": "thirty", "730": "seven thirty",
}  # fmt: skip


def words(text: str) -> list[str]:
    """Lower case, punctuation dropped, digits spelled: Whisper writes "7:30" for "seven thirty"."""
    text = re.sub(r"(\d+):(\d+)", r"\1\2", text.lower())
    out: list[str] = []
    for w in re.sub(r"[^a-z0-9' ]+", " ", text).split():
        out.extend(NUMBER_WORDS.get(w, w).split() if w.isdigit() else [w])
    return out


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


ESPEAK_VOICES = ("en-us", "en-gb", "en-us+f3")


def _espeak(text: str, voice: str) -> np.ndarray:
    import soundfile as sf

    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, rate, 16_000).astype(np.float32)


def _clips(voice: str, takes: int, tail_ms: int) -> list[tuple[str, np.ndarray]]:
    tail = np.zeros(16 * tail_ms, dtype=np.float32)
    clips = []
    if voice == "espeak":
        for text in SENTENCES:
            for name in ESPEAK_VOICES[:takes]:
                clips.append((text, np.concatenate([_espeak(text, name), tail])))
        return clips
    tts = PiperTextToSpeech()
    for text in SENTENCES:
        for _ in range(takes):
            speech = tts.synthesize(text)
            audio = soxr.resample(speech.samples.astype(np.float32) / 32768, speech.sample_rate, 16_000)
            clips.append((text, np.concatenate([audio.astype(np.float32), tail])))
    return clips


def _assistant_prompt() -> str | None:
    from pipelines.agents.registry import load_agents
    from pipelines.agents.vocabulary import transcription_prompt
    from pipelines.settings import get_settings

    return transcription_prompt(load_agents(get_settings().agents, default="Assistant").get("Assistant"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--voice", choices=("piper", "espeak"), default="piper")
    parser.add_argument("--takes", type=int, default=3, help="per sentence (piper: random; espeak: voices)")
    parser.add_argument("--windows", default="10,20", help="short windows to compare with 30 s, in seconds")
    parser.add_argument("--tail-ms", type=int, default=0, help="silence after each clip (live sessions: 250)")
    parser.add_argument(
        "--agent-prompt", action="store_true",
        help="also each window with the Assistant's Whisper prompt (its tool vocabulary), side by side",
    )  # fmt: skip
    args = parser.parse_args()
    clips = _clips(args.voice, args.takes, args.tail_ms)
    windows = [float(w) for w in args.windows.split(",")]
    models = {f"{w:g} s window": (WhisperSpeechToText(short_window_s=w), None) for w in windows}
    models["30 s window"] = (WhisperSpeechToText(), None)
    if args.agent_prompt:
        prompt = _assistant_prompt()
        for name, (stt, _) in list(models.items()):
            models[f"{name} + agent prompt"] = (stt, prompt)
    title = f"Whisper tiny.en on {len(clips)} {args.voice} clips ({len(SENTENCES)} sentences)"
    title += f", {args.tail_ms} ms silence after each"
    table = Table(title=title)
    for column in ("window", "WER %", "median ms", "p95 ms", "time ratio"):
        table.add_column(column, justify="right")
    results = {}
    for name, (stt, prompt) in models.items():
        stt.transcribe(clips[0][1])  # warm-up
        errors = total = 0
        times = []
        for text, audio in clips:
            started = time.perf_counter()
            got = stt.transcribe(audio, prompt=prompt).text
            times.append((time.perf_counter() - started) * 1000)
            errors += edit_distance(words(text), words(got))
            total += len(words(text))
        results[name] = (100 * errors / total, float(np.median(times)), float(np.percentile(times, 95)))
    base = results["30 s window"][1]
    for name, (wer, median, p95) in results.items():
        table.add_row(name, f"{wer:.1f}", f"{median:.0f}", f"{p95:.0f}", f"{median / base:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
