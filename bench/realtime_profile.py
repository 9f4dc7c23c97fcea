"""A live turn's timeline, event by event, in one process with the local models.

A `RealtimeSession` is driven at real-time pace (20 ms frames, silence after each question, as an open
microphone sends), and every model call the session makes is timed where it happens (STT, prefill, LLM
tokens, TTS, the end-of-turn model), so the gap between the last speech sample and the first audio delta
is split into what ran in it. Where `bench/realtime_stages.py` times each stage alone, this shows the
order, the waits between stages and the work that ran when it was not needed.

    python bench/realtime_profile.py [--voice espeak|piper] [--mode server_vad|semantic_vad] [--turns 6]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.realtime import MODES, QUESTIONS, speak

Mark = tuple[float, str]


class Clock:
    """Marks on one monotonic clock, in ms since the turn's last speech sample."""

    def __init__(self) -> None:
        self.marks: list[Mark] = []
        self.origin = time.monotonic()

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic(), what))

    def turn(self) -> None:
        self.marks.clear()
        self.origin = time.monotonic()

    def rows(self) -> list[tuple[float, str]]:
        return [((t - self.origin) * 1000, what) for t, what in self.marks]


def _timed(clock: Clock, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        text = f" {args[0]!r}" if args and isinstance(args[0], str) else ""
        clock.mark(f"{name} start{text}")
        try:
            return fn(*args, **kwargs)
        finally:
            clock.mark(f"{name} end")

    return wrapper


def _timed_stream(clock: Clock, fn: Callable[..., Iterator[str]]) -> Callable[..., Iterator[str]]:
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[str]:
        clock.mark("llm stream start")
        tokens = 0
        for delta in fn(*args, **kwargs):
            tokens += 1
            if tokens in (1, 4, 8):
                clock.mark(f"llm token {tokens}")
            yield delta
        clock.mark(f"llm stream end ({tokens} tokens)")

    return wrapper


def instrument(engines: Any, clock: Clock) -> None:
    engines.transcribe = _timed(clock, "stt", engines.transcribe)
    engines.prefill = _timed(clock, "prefill", engines.prefill)
    engines.synthesize = _timed(clock, "tts", engines.synthesize)
    for slot in engines.slots:
        slot.chat.stream = _timed_stream(clock, slot.chat.stream)
    if engines.turn_model is not None:
        engines.turn_model.probability = _timed(clock, "smart-turn", engines.turn_model.probability)


async def run(args: argparse.Namespace) -> None:
    from pipelines.realtime.engines import load_engines
    from pipelines.realtime.session import RealtimeSession
    from pipelines.settings import Settings

    engines = load_engines(Settings(), llm_contexts=1)
    clock = Clock()
    instrument(engines, clock)
    first_audio = asyncio.Event()

    async def emit(data: dict[str, Any]) -> None:
        kind = data["type"]
        if kind in ("input_audio_buffer.speech_stopped", "response.created", "response.done"):
            clock.mark(kind)
        if kind == "conversation.item.input_audio_transcription.completed":
            clock.mark(f"heard {data.get('transcript', '')!r}")
        if kind == "response.output_audio_transcript.done":
            clock.mark(f"said {data.get('transcript', '')[:100]!r}")
        if kind == "response.output_audio.delta" and not first_audio.is_set():
            clock.mark("FIRST AUDIO DELTA")
            first_audio.set()
        if kind == "response.done":
            done.set()

    done = asyncio.Event()
    session = RealtimeSession(engines, emit)
    await session.start()
    mode = MODES[args.mode]
    update = {
        "type": "session.update",
        "session": {  # transcription on: the timeline shows what was heard (the STT runs either way)
            "type": "realtime",
            "audio": {"input": {"turn_detection": mode, "transcription": {"model": "whisper-1"}}},
        },
    }
    await session.handle(json.dumps(update))
    pcm_turns = speak(QUESTIONS[: args.turns], args.voice)
    t0 = time.monotonic()
    sent_ms = 0

    async def send(pcm: bytes) -> None:
        nonlocal sent_ms
        for i in range(0, len(pcm), 960):
            delay = t0 + sent_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = base64.b64encode(pcm[i : i + 960]).decode()
            await session.handle(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            sent_ms += 20

    summary: list[float] = []
    for n, pcm in enumerate(pcm_turns, 1):
        await send(bytes(2 * 24 * 400))
        await send(pcm)
        clock.turn()
        first_audio.clear()
        done.clear()
        while not done.is_set():
            await send(bytes(960))
        rows = clock.rows()
        print(f"\nturn {n}: {QUESTIONS[n - 1]!r}")
        for at, what in rows:
            print(f"  {at:8.0f} ms  {what}")
        first = [at for at, what in rows if what == "FIRST AUDIO DELTA"]
        summary += first[:1]
        # let the reply's audio play out before the next question, as a listener would
        await send(bytes(2 * 24 * 1500))
        t0 = time.monotonic() - sent_ms / 1000
    await session.close()
    print(f"\nfirst audio after the last speech sample, ms: {[round(s) for s in summary]}")
    print(f"p50 {np.percentile(summary, 50):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voice", choices=("espeak", "piper"), default="espeak")
    parser.add_argument("--mode", choices=tuple(MODES), default="server_vad")
    parser.add_argument("--turns", type=int, default=6)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
