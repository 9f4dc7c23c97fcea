"""Speed of the embedded local models on this machine: `python -m bench.models [--runs N]`.

Each model is loaded once, through the same factory the workers use, and every figure is the median of
`--runs` repetitions after one warm-up, so the table shows steady-state cost rather than first-call
effects (the load time is the exception: it is measured once, as a process pays it once).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import statistics
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import soxr
from rich.console import Console
from rich.table import Table

from pipelines.providers import factory
from pipelines.providers.base import ChatMessage, ChatModel, GenerationOptions, SpeechToText, TextToSpeech
from pipelines.settings import Settings

if TYPE_CHECKING:
    from pipelines.providers.local_vad import SileroVAD

T = TypeVar("T")

#: Imported before anything is loaded, so that load times do not include imports.
PROVIDER_MODULES = ("local_stt", "local_llm", "local_tts", "local_vad")

#: About 5 s of piper speech.
STT_TEXT = (
    "What is the weather like in Paris today? I would like to know if I need an umbrella this afternoon."
)
TTS_TEXT = "The weather in Paris is mild today. Expect light rain after four, so take an umbrella."
LLM_SYSTEM = ChatMessage("system", "You are a helpful voice assistant. Answer in one or two short sentences.")
#: Different questions after one shared system prompt, as consecutive requests from different callers look:
#: asking the same prompt twice would hit llama-cpp-python's exact-prompt cache and measure nothing.
LLM_QUESTIONS = (
    "How do I make a good cup of tea?",
    "What is the capital of Italy?",
    "Can you suggest a name for a black cat?",
    "Why is the sky blue?",
    "What should I pack for a weekend in London?",
    "How many legs does a spider have?",
)


@dataclass(frozen=True)
class Row:
    stage: str
    metric: str
    value: str


def _median_of(runs: int, measure: Callable[[], float]) -> float:
    """One warm-up call, then the median of `runs` calls."""
    measure()
    return statistics.median(measure() for _ in range(runs))


def _stop(stream: Iterator[object]) -> None:
    """Close a stream taken only in part, which stops the generation behind it."""
    if isinstance(stream, Generator):
        stream.close()


def _timed(build: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    built = build()
    return built, time.perf_counter() - started


def _import_providers() -> float:
    """Seconds to import the provider modules (onnxruntime, CTranslate2, llama.cpp, piper): a cost every
    worker process pays at start, on top of the model loads."""
    started = time.perf_counter()
    for module in PROVIDER_MODULES:
        importlib.import_module(f"pipelines.providers.{module}")
    return time.perf_counter() - started


def _speech_16k(tts: TextToSpeech, text: str) -> np.ndarray:
    speech = tts.synthesize(text)
    audio = speech.samples.astype(np.float32) / 32768.0
    return np.asarray(soxr.resample(audio, speech.sample_rate, 16_000), dtype=np.float32)


def bench_tts(tts: TextToSpeech, runs: int) -> list[Row]:
    def first_chunk() -> float:
        started = time.perf_counter()
        stream = tts.stream(TTS_TEXT)
        next(stream)
        elapsed = time.perf_counter() - started
        _stop(stream)
        return elapsed

    def rtf() -> float:
        started = time.perf_counter()
        speech = tts.synthesize(TTS_TEXT)
        return (time.perf_counter() - started) / speech.duration_s

    return [
        Row("TTS piper joe-medium", "time to first sentence audio", f"{_median_of(runs, first_chunk):.3f} s"),
        Row("TTS piper joe-medium", "real-time factor (2 sentences)", f"{_median_of(runs, rtf):.3f}"),
    ]


def bench_stt(stt: SpeechToText, clip: np.ndarray, runs: int) -> list[Row]:
    duration = len(clip) / 16_000

    def elapsed() -> float:
        started = time.perf_counter()
        stt.transcribe(clip)
        return time.perf_counter() - started

    seconds = _median_of(runs, elapsed)
    return [
        Row("STT whisper tiny.en int8", f"time for a {duration:.1f} s clip", f"{seconds:.3f} s"),
        Row("STT whisper tiny.en int8", "real-time factor", f"{seconds / duration:.3f}"),
    ]


LLM_OPTIONS = GenerationOptions(max_tokens=96, temperature=0.2, seed=7)


_questions = itertools.cycle(LLM_QUESTIONS)


def _next_messages() -> list[ChatMessage]:
    return [LLM_SYSTEM, ChatMessage("user", next(_questions))]


def _first_token(chat: ChatModel) -> float:
    """Seconds until the first delta; the stream is then closed, which stops generation."""
    started = time.perf_counter()
    stream = chat.stream(_next_messages(), LLM_OPTIONS)
    next(stream)
    elapsed = time.perf_counter() - started
    _stop(stream)
    return elapsed


def _tokens_per_second(chat: ChatModel) -> float:
    """Deltas per second after the first; llama-cpp-python streams one token per delta."""
    stream = chat.stream(_next_messages(), LLM_OPTIONS)
    next(stream)
    started = time.perf_counter()
    count = sum(1 for _ in stream)
    return count / max(time.perf_counter() - started, 1e-9)


def bench_llm(chat: ChatModel, runs: int) -> list[Row]:
    from pipelines.providers.local_llm import LlamaCppChatModel

    name = "LLM SmolLM2-135M Q4_1"
    rows: list[Row] = []
    if isinstance(chat, LlamaCppChatModel):
        reuse = chat.reuse_prompt_cache
        chat.reuse_prompt_cache = False
        cold = _median_of(runs, lambda: _first_token(chat))
        chat.reuse_prompt_cache = reuse
        rows.append(Row(name, "time to first token, no prompt cache", f"{cold:.3f} s"))
    warm = _median_of(runs, lambda: _first_token(chat))
    rate = _median_of(runs, lambda: _tokens_per_second(chat))
    rows.append(Row(name, "time to first token, system prompt cached", f"{warm:.3f} s"))
    rows.append(Row(name, "generation speed", f"{rate:.0f} tokens/s"))
    return rows


def bench_vad(vad: SileroVAD, clip: np.ndarray, runs: int) -> list[Row]:
    frames = clip[: len(clip) // vad.frame_samples * vad.frame_samples].reshape(-1, vad.frame_samples)

    def per_frame() -> float:
        vad.reset()
        started = time.perf_counter()
        for frame in frames:
            vad.probability(frame)
        return (time.perf_counter() - started) / len(frames)

    ms = _median_of(runs, per_frame) * 1000
    return [Row("VAD silero v6 (onnxruntime)", "time per 32 ms frame", f"{ms:.3f} ms")]


def main() -> None:
    parser = argparse.ArgumentParser(description="Speed of the embedded local models.")
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure (median reported)")
    args = parser.parse_args()
    settings = Settings()  # a bench is an edge: it reads VOICECHAIN_* like the workers do

    imports = _import_providers()
    from pipelines.providers.local_vad import SileroVAD

    tts, tts_load = _timed(lambda: factory.build_tts(settings))
    stt, stt_load = _timed(lambda: factory.build_stt(settings))
    chat, llm_load = _timed(lambda: factory.build_chat_model(settings))
    vad, vad_load = _timed(SileroVAD)

    clip = _speech_16k(tts, STT_TEXT)
    rows = [
        Row("load", "import provider modules", f"{imports:.3f} s"),
        Row("load", "piper voice", f"{tts_load:.3f} s"),
        Row("load", "whisper model", f"{stt_load:.3f} s"),
        Row("load", "GGUF", f"{llm_load:.3f} s"),
        Row("load", "silero ONNX session", f"{vad_load:.3f} s"),
        *bench_stt(stt, clip, args.runs),
        *bench_llm(chat, args.runs),
        *bench_tts(tts, args.runs),
        *bench_vad(vad, clip, args.runs),
    ]

    title = (
        f"Local models, {os.cpu_count()} CPUs, LLM threads {settings.llm_threads}, "
        f"medians of {args.runs} runs"
    )
    table = Table(title=title)
    for column in ("stage", "metric", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in rows:
        table.add_row(row.stage, row.metric, row.value)
    Console().print(table)


if __name__ == "__main__":
    main()
