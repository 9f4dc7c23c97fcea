"""Realtime benchmarks, against a real pool process with the local models, side by side in one run.

Voice-to-voice latency: general questions (answers the model must generate), spoken by espeak-ng (a voice
the models were not tuned on) or piper, streamed at real-time pace like an open microphone (silence keeps
coming after the question), for `server_vad` (500 ms) and `semantic_vad` (eagerness auto), with 1 and
with K sessions talking at once, over one or more transports:

- `websocket`: the `openai` client straight to the pool's port;
- `gateway`: the `openai` client given the API's `base_url` only (`WS /v1/realtime` on the API origin,
  relayed to the pool);
- `webrtc`: an aiortc call posted to the API's `POST /v1/realtime/calls` (needs root: the stack and the
  client run in a loopback-only network namespace).

Several transports take the same turns in one run, alternating turn by turn (their order rotating), so
machine noise falls on all alike. Voice-to-voice is measured alike on each: from the last speech sample
sent to the first audible 20 ms of the reply at the client (see `bench/realtime_links.py`); "delta" is
the figure issue 12 set its goals in, to the first `response.output_audio.delta` (WebSocket transports:
a reply's quiet start not counted). "after turn end" is the part after the turn end the server
declared (`speech_stopped`'s audio_end_ms, which counts the silence waited for); "turn end seen" is that
turn end -> `speech_stopped` at the client (what the input path and the detection add; for WebRTC within
a frame or two, since the microphone's frame count stands for the pool's audio clock); "media" is the
reply's first transcript delta -> its first audible audio (the output path alone, robust to model
time). For WebRTC a second table splits the output path with the pool's own timestamps.

Cut-ins: unfinished utterances with a pause of 0.6-0.9 s inside ("I would like to book a table for ...
four people tonight"); a reply that starts (`response.created`) before the continuation has been sent is
a cut-in.

    python bench/realtime.py [--voice espeak|piper] [--sessions 4] [--modes server_vad,semantic_vad]
                             [--transport websocket,webrtc,gateway]

The machine is shared and noisy: compare the rows of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.realtime_links import Link, RtcLink, Sample, WsLink, ask, cut_in
from bench.realtime_stack import Stack

API_KEY = "bench-key"
SILENCE_MS = 500
#: general questions, none of them used to tune turn detection or prompts; answers must be generated
QUESTIONS = [
    "Why do we have seasons on Earth?",
    "How does a refrigerator keep food cold?",
    "What is the difference between weather and climate?",
    "Can you explain how vaccines work?",
    "What makes the ocean salty?",
    "How do airplanes stay in the air?",
    "Why is exercise good for the heart?",
    "What should I pack for a weekend hiking trip?",
    "How do bees make honey?",
    "What are some tips for sleeping better?",
    "Why does bread rise when it bakes?",
    "How far away is the moon?",
]
#: unfinished utterances: (first part, pause in seconds, continuation)
UNFINISHED = [
    ("I would like to book a table for", 0.7, "four people tonight."),
    ("Can you tell me a story about", 0.8, "a dragon and a knight?"),
    ("My favourite city is", 0.9, "Lisbon, what should I see there?"),
    ("I need to buy milk and", 0.6, "some bread on the way home."),
    ("What is the best way to", 0.75, "learn a new language?"),
    ("So the thing is, um", 0.85, "I forgot my password."),
    ("Remind me to call my sister", 0.65, "tomorrow at noon."),
    ("How many people live in", 0.9, "Japan?"),
]
MODES = {
    "server_vad": {"type": "server_vad", "silence_duration_ms": SILENCE_MS},
    "semantic_vad": {"type": "semantic_vad", "eagerness": "auto"},
}


def _to_pcm24(samples: np.ndarray, rate: int) -> bytes:
    """24 kHz PCM16 with leading and trailing silence cut off (the measurement starts at the last sound)."""
    import soxr

    audio = soxr.resample(samples.astype(np.float32), rate, 24_000)
    audio = audio / max(1e-6, float(np.max(np.abs(audio)))) * 0.8
    loud = np.nonzero(np.abs(audio) > 0.02)[0]
    audio = audio[loud[0] : loud[-1] + 1] if len(loud) else audio
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def speak(texts: list[str], voice: str) -> list[bytes]:
    if voice == "espeak":
        import soundfile as sf

        out = []
        for text in texts:
            wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
            samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
            out.append(_to_pcm24(samples, rate))
        return out
    from pipelines.providers.factory import build_tts
    from pipelines.settings import Settings

    tts = build_tts(Settings())
    out = []
    for text in texts:
        speech = tts.synthesize(text)
        out.append(_to_pcm24(speech.samples.astype(np.float32) / 32768, speech.sample_rate))
    return out


TRANSPORTS = ("websocket", "webrtc", "gateway")
Unfinished = list[tuple[bytes, float, bytes]]  # (first part, pause in seconds, continuation), spoken


def parse_transports(values: list[str] | None) -> list[str]:
    """`--transport` given several times and/or as comma lists, in order, without repeats."""
    chosen: list[str] = []
    for value in values or ["websocket"]:
        for name in value.split(","):
            name = name.strip()
            if name not in TRANSPORTS:
                raise SystemExit(f"unknown transport {name!r}; choose from {', '.join(TRANSPORTS)}")
            if name not in chosen:
                chosen.append(name)
    return chosen


def _percentile(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


@dataclass
class Row:
    """What one transport gave for one configuration."""

    samples: list[Sample] = field(default_factory=list)
    asked: int = 0
    cut_ins: int = 0
    unfinished: int = 0
    busy_s: float = 0.0

    def of(self, name: str) -> list[float]:
        return [v for v in (getattr(s, name) for s in self.samples) if v is not None]


def make_link(transport: str, stack: Stack) -> Link:
    if transport == "websocket":
        return WsLink("websocket", API_KEY, websocket_base_url=stack.pool_ws)
    if transport == "gateway":
        return WsLink("gateway", API_KEY, base_url=stack.api_http)
    return RtcLink(f"{stack.api_http}/realtime/calls", API_KEY)


def _rotated(items: list[str], turn: int) -> list[str]:
    k = turn % len(items)
    return items[k:] + items[:k]


async def run_config(
    stack: Stack, transports: list[str], mode: str, k: int, questions: list[bytes], unfinished: Unfinished
) -> dict[str, Row]:
    """k sessions per transport; turn by turn, each transport's k sessions ask at once, in turn."""
    links = {t: [make_link(t, stack) for _ in range(k)] for t in transports}
    rows = {t: Row() for t in transports}
    session = {"type": "realtime", "audio": {"input": {"turn_detection": MODES[mode]}}}
    try:
        for group in links.values():
            for link in group:
                await link.open()
                await link.configure(session)
        for i in range(len(questions)):
            for t in _rotated(transports, i):
                started = time.monotonic()
                picks = [(i + 3 * j) % len(questions) for j in range(k)]  # sessions ask different ones
                got = await asyncio.gather(
                    *(
                        ask(link, questions[q], 300 + 97 * (q % 5))
                        for link, q in zip(links[t], picks, strict=True)
                    )
                )
                rows[t].samples += [s for s in got if s is not None]
                rows[t].asked += k
                rows[t].busy_s += time.monotonic() - started
        for i, (head, pause_s, tail) in enumerate(unfinished):
            for t in _rotated(transports, i):
                started = time.monotonic()
                rows[t].cut_ins += await cut_in(links[t][0], head, pause_s, tail)
                rows[t].unfinished += 1
                rows[t].busy_s += time.monotonic() - started
    finally:
        for group in links.values():
            for link in group:
                with contextlib.suppress(Exception):
                    await link.close()
    return rows


COLUMNS = ("turns", "p50", "p95", "-ws p50", "/ws p50", "delta p50", "after p50", "after p95",
           "end seen", "media p50", "x 1 sess", "cut-ins", "busy s")  # fmt: skip


def print_row(transport: str, mode: str, k: int, row: Row, ws: Row | None, single: float) -> None:
    v2v = row.of("v2v")
    p50 = _percentile(v2v, 50)
    base = _percentile(ws.of("v2v"), 50) if ws is not None else float("nan")
    cut = f"{row.cut_ins}/{row.unfinished}" if row.unfinished else "-"
    cells = (
        f"{len(v2v)}/{row.asked}", f"{p50:.0f}", f"{_percentile(v2v, 95):.0f}", f"{p50 - base:+.0f}",
        f"{p50 / base:.2f}", f"{_percentile(row.of('first_delta'), 50):.0f}",
        f"{_percentile(row.of('after_end'), 50):.0f}",
        f"{_percentile(row.of('after_end'), 95):.0f}", f"{_percentile(row.of('end_seen'), 50):.0f}",
        f"{_percentile(row.of('media'), 50):.0f}", f"{p50 / single:.2f}", cut, f"{row.busy_s:.0f}",
    )  # fmt: skip
    print(f"{transport:10}{mode:14}{k:>9}" + "".join(f"{c:>11}" for c in cells), flush=True)


def print_media_split(samples: list[Sample], media: dict[str, dict[str, float]]) -> None:
    """Where a WebRTC reply's first audible audio spends its time, p50 over the turns (ms)."""
    parts: dict[str, list[float]] = {
        "pool: reply audio in -> its first frame to the encoder (pacing)": [],
        "pool: first frame -> first audible frame to the encoder (quiet start)": [],
        "first audible frame to the encoder -> its RTP packet at the client": [],
        "client: that packet -> the frame decoded (receive buffer, Opus)": [],
    }
    names = list(parts)
    for s in samples:
        t = media.get(s.response_id)
        if t is None or "audible" not in t or s.loud_packet is None:
            continue
        parts[names[0]].append((t["out"] - t["fed"]) * 1000)
        parts[names[1]].append((t["audible"] - t["out"]) * 1000)
        parts[names[2]].append((s.loud_packet - t["audible"]) * 1000)
        parts[names[3]].append((s.heard - s.loud_packet) * 1000)
    print(f"\nWebRTC output path, p50 / p95 over {len(parts[names[0]])} turns (ms)")
    for name, values in parts.items():
        print(f"  {name:74}{_percentile(values, 50):8.1f}{_percentile(values, 95):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voice", choices=("espeak", "piper"), default="espeak")
    parser.add_argument("--modes", default="server_vad,semantic_vad")
    parser.add_argument("--sessions", type=int, default=4, help="sessions talking at once (besides 1)")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--unfinished", type=int, default=len(UNFINISHED))
    parser.add_argument(
        "--transport", action="append", help="websocket, webrtc, gateway: repeat it or give a comma list"
    )
    args = parser.parse_args()
    transports = parse_transports(args.transport)

    questions = speak(QUESTIONS[: args.questions], args.voice)
    texts = UNFINISHED[: args.unfinished]
    heads = speak([h for h, _, _ in texts], args.voice)
    tails = speak([t for _, _, t in texts], args.voice)
    unfinished = [(h, p, t) for h, (_, p, _), t in zip(heads, texts, tails, strict=True)]
    print(f"\nVoice-to-voice latency, {args.voice} voice, {len(questions)} questions per session (ms)")
    print(f"{'transport':10}{'mode':14}{'sessions':>9}" + "".join(f"{c:>11}" for c in COLUMNS), flush=True)
    single: dict[tuple[str, str], float] = {}
    webrtc: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(
            Path(tmp), API_KEY, with_api=transports != ["websocket"], isolated="webrtc" in transports
        )
        try:
            stack.start()
            for k in dict.fromkeys((1, args.sessions)):
                for mode in args.modes.split(","):
                    rows = stack.arun(
                        lambda k=k, mode=mode: run_config(
                            stack, transports, mode, k, questions, unfinished if k == 1 else []
                        )
                    )
                    for t, row in rows.items():
                        single.setdefault((t, mode), _percentile(row.of("v2v"), 50))
                        print_row(t, mode, k, row, rows.get("websocket"), single[(t, mode)])
                    webrtc += rows["webrtc"].samples if "webrtc" in rows else []
            media = stack.media_times()
        except BaseException:
            stack.print_logs()
            raise
        finally:
            stack.stop()
    if webrtc:
        print_media_split(webrtc, media)
    print(
        "\np50/p95: last speech sample sent -> first audible reply audio at the client. -ws, /ws: against"
        " the websocket row of the same run. delta: last speech sample sent -> first"
        " response.output_audio.delta (WebSocket transports; the reply's quiet start not counted)."
        " after: from the turn end the server declared (speech_stopped)"
        " to the first audio. end seen: that turn end -> speech_stopped at the client. media: the reply's"
        " first transcript delta -> its first audible audio. cut-ins: replies started before an unfinished"
        " utterance's continuation (pause 0.6-0.9 s inside) was sent. busy s: time spent on this row's turns."
    )


if __name__ == "__main__":
    main()
