"""Where a realtime turn's time goes after the user stops speaking, stage by stage, with the local models.

In one process, in the order a live turn runs them after the trailing silence begins: Whisper on the
utterance, Smart Turn on the pause, the LLM's time to its first token and to its first clause (with the
conversation so far prefilled, as the session does while the user speaks), TTS of that clause. Turns
follow each other in one conversation, so a stage that grows with the conversation shows as a trend
from the first turns to the last. Wall time and process CPU time are both given: the machine is shared,
and CPU time is what the stage costs whatever the neighbours do.

    python bench/realtime_stages.py [--voice espeak|piper] [--turns 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.realtime import QUESTIONS, speak


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voice", choices=("espeak", "piper"), default="espeak")
    parser.add_argument("--turns", type=int, default=len(QUESTIONS))
    args = parser.parse_args()

    from pipelines.providers.base import ChatMessage
    from pipelines.realtime.config import DEFAULT_INSTRUCTIONS
    from pipelines.realtime.engines import load_engines
    from pipelines.realtime.message_out import first_clause as _first_clause
    from pipelines.settings import Settings
    from pipelines.text.sentences import SentenceSplitter

    settings = Settings()
    engines = load_engines(settings, llm_contexts=1)
    pcm = speak(QUESTIONS[: args.turns], args.voice)
    history: list[ChatMessage] = [ChatMessage("system", DEFAULT_INSTRUCTIONS)]
    rows: list[dict[str, float]] = []
    for i, raw in enumerate(pcm):
        import soxr

        audio24 = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768
        audio = soxr.resample(audio24, 24_000, 16_000).astype(np.float32)
        audio = np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(16 * 96, np.float32)])
        row: dict[str, float] = {"speech": len(audio) / 16}
        engines.prefill(history[-13:])  # the session does this while the user speaks
        text, row["stt"], row["stt cpu"] = timed(lambda a=audio: engines.transcribe(a))
        if engines.turn_model is not None:
            _, row["turn"], row["turn cpu"] = timed(lambda a=audio: engines.turn_model.probability(a))  # type: ignore[union-attr]
        messages = [*history[-13:], ChatMessage("user", text)]
        options = engines.options("inf")
        w0, c0 = time.perf_counter(), time.process_time()
        first_token = first_clause = None
        head, reply, splitter = "", "", SentenceSplitter()
        for delta in engines.chat.stream(messages, options):
            now = (time.perf_counter() - w0) * 1000
            first_token = first_token if first_token is not None else now
            reply += delta
            if first_clause is None:
                head += delta
                released = splitter.feed(delta)
                clause = released[0] if released else _first_clause(head)
                if clause:
                    first_clause = now
                    row["clause cpu"] = (time.process_time() - c0) * 1000
                    clause_text = clause
        row["llm 1st token"] = first_token or float("nan")
        row["llm 1st clause"] = first_clause or float("nan")
        if first_clause is None:
            clause_text = reply.strip() or "Okay."
        _, row["tts clause"], row["tts cpu"] = timed(lambda t=clause_text: engines.synthesize(t))
        row["prompt tokens"] = sum(len(m.content) for m in messages) / 4
        rows.append(row)
        history += [ChatMessage("user", text), ChatMessage("assistant", reply.strip())]
        print(f"turn {i + 1}: {text!r} -> {reply.strip()[:60]!r}", file=sys.stderr)

    keys = [k for k in rows[0] if k != "speech"]
    print(f"\nPer-stage time after the silence begins, {args.voice} voice, {len(rows)} turns (ms; median)")
    print(f"{'stage':18}{'all':>9}{'turns 1-3':>11}{'last 3':>9}")
    for k in keys:
        vals = [r.get(k, float("nan")) for r in rows]
        print(f"{k:18}{np.nanmedian(vals):9.0f}{np.nanmedian(vals[:3]):11.0f}{np.nanmedian(vals[-3:]):9.0f}")
    crit = [r["stt"] + r["llm 1st clause"] + r["tts clause"] for r in rows]
    print(
        f"{'stt+clause+tts':18}{np.nanmedian(crit):9.0f}{np.nanmedian(crit[:3]):11.0f}{np.nanmedian(crit[-3:]):9.0f}"
    )


if __name__ == "__main__":
    main()
