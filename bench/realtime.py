"""Realtime benchmarks, against a real pool process with the local models, side by side in one run.

Voice-to-voice latency: general questions (answers the model must generate), spoken by espeak-ng (a voice
the models were not tuned on) or piper, streamed at real-time pace like an open microphone (silence keeps
coming after the question). Measured from the last speech sample sent to the first
`response.output_audio.delta`, for `server_vad` (500 ms) and `semantic_vad` (eagerness auto), with 1 and
with K sessions talking at once. "after turn end" is the part after the server declared the turn over
(`speech_stopped`'s audio_end_ms): what model work adds to the wait for silence.

Cut-ins: unfinished utterances with a pause of 0.6-0.9 s inside ("I would like to book a table for ...
four people tonight"); a reply that starts (`response.created`) before the continuation has been sent is
a cut-in.

    python bench/realtime.py [--voice espeak|piper] [--sessions 4] [--modes server_vad,semantic_vad]

The machine is shared and noisy: compare the rows of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

API_KEY = "bench-key"
CHUNK_MS = 20
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


def _silence(ms: float) -> bytes:
    return bytes(2 * int(24 * ms))


def _percentile(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


class Streamer:
    """Sends 20 ms chunks at real-time pace from a fixed start, so audio time maps to wall time."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.t0 = time.monotonic()
        self.sent_ms = 0

    async def send(self, pcm: bytes) -> None:
        step = 48 * CHUNK_MS
        for i in range(0, len(pcm), step):
            due = self.t0 + self.sent_ms / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())
            self.sent_ms += CHUNK_MS

    def wall_of(self, audio_ms: float) -> float:
        return self.t0 + audio_ms / 1000

    def reanchor(self) -> None:
        self.t0 = time.monotonic() - self.sent_ms / 1000


async def _silence_forever(streamer: Streamer) -> None:
    while True:
        await streamer.send(_silence(CHUNK_MS))


@dataclass
class Turns:
    latency: list[float] = field(default_factory=list)  # end of speech -> first audio (ms)
    after_end: list[float] = field(default_factory=list)  # turn end (speech_stopped) -> first audio
    cut_ins: int = 0
    unfinished: int = 0

    def add(self, other: Turns) -> None:
        self.latency += other.latency
        self.after_end += other.after_end
        self.cut_ins += other.cut_ins
        self.unfinished += other.unfinished


async def _configure(conn: Any, mode: str) -> None:
    await conn.session.update(
        session={"type": "realtime", "audio": {"input": {"turn_detection": MODES[mode]}}}
    )
    async for ev in conn:
        if ev.type == "session.updated":
            return


async def _until_done(conn: Any, streamer: Streamer) -> tuple[float | None, float | None]:
    """Stream silence until the reply's first audio; return (first audio wall time, turn end wall time)."""
    first = stopped = None
    filler = asyncio.create_task(_silence_forever(streamer))
    try:
        async for ev in conn:
            if ev.type == "input_audio_buffer.speech_stopped" and stopped is None:
                stopped = streamer.wall_of(ev.audio_end_ms)
            if ev.type == "response.output_audio.delta" and first is None:
                first = time.monotonic()
                filler.cancel()
            if ev.type == "response.done":
                break
    finally:
        filler.cancel()
    return first, stopped


async def session_run(
    base: str, mode: str, questions: list[bytes], unfinished: list[tuple[bytes, float, bytes]], offset: int
) -> Turns:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
    out = Turns()
    async with client.realtime.connect(model="voicechain-local") as conn:
        await conn.recv()
        await _configure(conn, mode)
        streamer = Streamer(conn)
        for i in range(len(questions)):
            await streamer.send(_silence(300 + 97 * ((i + offset) % 5)))  # sessions drift apart
            await streamer.send(questions[(i + offset) % len(questions)])
            end_of_speech = time.monotonic()
            first, stopped = await _until_done(conn, streamer)
            if first is not None:
                out.latency.append((first - end_of_speech) * 1000)
                if stopped is not None:
                    out.after_end.append((first - stopped) * 1000)
            streamer.reanchor()
        for head, pause_s, tail in unfinished:
            await streamer.send(_silence(300))
            created: list[float] = []

            async def watch(created: list[float] = created) -> None:
                async for ev in conn:
                    if ev.type == "response.created":
                        created.append(time.monotonic())
                        return

            watcher = asyncio.create_task(watch())
            await streamer.send(head + _silence(pause_s * 1000) + tail)
            tail_sent = time.monotonic()
            await asyncio.wait([watcher], timeout=5.0)
            watcher.cancel()
            out.unfinished += 1
            if created and created[0] < tail_sent:
                out.cut_ins += 1
            # let the reply (or replies) finish before the next utterance
            await _drain(conn, streamer)
            streamer.reanchor()
    return out


async def _drain(conn: Any, streamer: Streamer) -> None:
    """Stream silence until no response has been running for a while."""
    filler = asyncio.create_task(_silence_forever(streamer))
    try:
        while True:
            try:
                ev = await asyncio.wait_for(conn.recv(), timeout=2.5)
            except TimeoutError:
                return
            if ev.type == "response.done":
                continue
    finally:
        filler.cancel()


async def run_config(
    base: str, mode: str, k: int, questions: list[bytes], unfinished: list[tuple[bytes, float, bytes]]
) -> Turns:
    results = await asyncio.gather(
        *(session_run(base, mode, questions, unfinished, offset=j * 3) for j in range(k))
    )
    total = Turns()
    for r in results:
        total.add(r)
    return total


def start_server(port: int, data_dir: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VOICECHAIN_API_KEYS": API_KEY, "VOICECHAIN_DATA_DIR": data_dir}
    env.pop("VOICECHAIN_REDIS_URL", None)
    code = (
        "from pipelines.settings import Settings; from pipelines.storage.migrate import upgrade;"
        "from workers.realtime.app import PoolLimits; from workers.realtime.server import serve;"
        "s = Settings(); s.data_dir.mkdir(parents=True, exist_ok=True); upgrade(s.resolved_database_url);"
        f"serve(s, processes=1, host='127.0.0.1', port={port}, limits=PoolLimits(max_sessions=64))"
    )
    root = Path(__file__).resolve().parents[1]
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=root, stderr=subprocess.DEVNULL)


def wait_ready(port: int) -> None:
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--voice", choices=("espeak", "piper"), default="espeak")
    parser.add_argument("--modes", default="server_vad,semantic_vad")
    parser.add_argument("--sessions", type=int, default=4, help="sessions talking at once (besides 1)")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--unfinished", type=int, default=len(UNFINISHED))
    parser.add_argument("--port", type=int, default=18401)
    args = parser.parse_args()

    questions = speak(QUESTIONS[: args.questions], args.voice)
    texts = UNFINISHED[: args.unfinished]
    heads = speak([h for h, _, _ in texts], args.voice)
    tails = speak([t for _, _, t in texts], args.voice)
    unfinished = [(h, p, t) for h, (_, p, _), t in zip(heads, texts, tails, strict=True)]
    modes = args.modes.split(",")
    print(f"\nVoice-to-voice latency, {args.voice} voice, {len(questions)} questions per session (ms)")
    cols = ("turns", "p50", "p95", "after p50", "after p95", "x 1 sess", "cut-ins", "wall s")
    print(f"{'mode':14}{'sessions':>9}" + "".join(f"{c:>11}" for c in cols), flush=True)
    single: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(args.port, data_dir)
        try:
            wait_ready(args.port)
            base = f"ws://127.0.0.1:{args.port}/v1"
            for k in (1, args.sessions):
                for mode in modes:
                    t0 = time.monotonic()
                    t = asyncio.run(run_config(base, mode, k, questions, unfinished if k == 1 else []))
                    p50 = _percentile(t.latency, 50)
                    single.setdefault(mode, p50)
                    cut = f"{t.cut_ins}/{t.unfinished}" if t.unfinished else "-"
                    print(
                        f"{mode:14}{k:>9}{len(t.latency):>11}{p50:>11.0f}"
                        f"{_percentile(t.latency, 95):>11.0f}{_percentile(t.after_end, 50):>11.0f}"
                        f"{_percentile(t.after_end, 95):>11.0f}{p50 / single[mode]:>11.2f}{cut:>11}"
                        f"{time.monotonic() - t0:>11.0f}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(30)
    print(
        "\np50/p95: last speech sample sent -> first response.output_audio.delta. after: from the turn end"
        " the server declared (speech_stopped) to the first audio. cut-ins: replies started before an"
        " unfinished utterance's continuation (pause 0.6-0.9 s inside) was sent."
    )


if __name__ == "__main__":
    main()
