"""Realtime benchmarks, against a real worker process with the local models.

1. Voice-to-voice latency: from the end of the user's speech in the streamed input to the first
   `response.output_audio.delta` at the client, over `--turns` turns with the default server_vad settings.
   The silence the VAD must hear before ending a turn (silence_duration_ms = 500) is part of that latency by
   definition; the table shows it with and without.
2. Concurrency: K sessions streaming speech-and-silence at real-time pace into one process; for each K,
   how late `speech_stopped` arrives compared with when its audio was sent (frame handling falling behind
   shows as a growing lag) and the server's CPU per session.

    python bench/realtime.py [--turns 20] [--sessions 1,2,4,8] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

API_KEY = "bench-key"
CHUNK_MS = 20
SILENCE_MS = 500
QUESTIONS = [
    "What is the capital of France?",
    "Tell me a fun fact about cats.",
    "How many days are in a week?",
    "What color is the sky?",
    "Can you recommend a good book?",
    "What is two plus two?",
    "Say hello to my friend Anna.",
    "What should I cook for dinner tonight?",
    "Why do leaves change color in autumn?",
    "What time zone is London in?",
]


def _speech_pcm24() -> list[bytes]:
    """The questions spoken by piper, as 24 kHz PCM16 with piper's trailing silence cut off."""
    import soxr

    from pipelines.providers.factory import build_tts
    from pipelines.settings import Settings

    tts = build_tts(Settings())
    out = []
    for q in QUESTIONS:
        speech = tts.synthesize(q)
        audio = soxr.resample(speech.samples.astype(np.float32) / 32768, speech.sample_rate, 24_000) * 0.9
        loud = np.nonzero(np.abs(audio) > 0.02)[0]
        audio = audio[: loud[-1] + 1] if len(loud) else audio
        out.append((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out


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


async def _silence_forever(streamer: Streamer) -> None:
    while True:
        await streamer.send(bytes(2 * 24 * CHUNK_MS))


async def latency(base: str, utterances: list[bytes], turns: int) -> list[float]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
    results: list[float] = []
    async with client.realtime.connect(model="voicechain-local") as conn:
        await conn.recv()
        streamer = Streamer(conn)
        for turn in range(turns):
            await streamer.send(bytes(2 * 24 * 300))
            await streamer.send(utterances[turn % len(utterances)])
            end_of_speech = time.monotonic()
            first: float | None = None
            # silence goes on being streamed until the reply starts, as from a live microphone
            filler = asyncio.create_task(_silence_forever(streamer))
            async for ev in conn:
                if ev.type == "response.output_audio.delta" and first is None:
                    first = time.monotonic()
                    filler.cancel()
                if ev.type == "response.done":
                    break
            filler.cancel()
            if first is not None:
                results.append((first - end_of_speech) * 1000)
            streamer.t0 = time.monotonic() - streamer.sent_ms / 1000  # re-anchor after waiting
    return results


async def one_streaming_session(
    base: str, utterances: list[bytes], seconds: float, lags: list[float]
) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
    async with client.realtime.connect(model="voicechain-local") as conn:
        await conn.recv()
        streamer = Streamer(conn)

        async def reader() -> None:
            async for ev in conn:
                if ev.type == "input_audio_buffer.speech_stopped":
                    lags.append((time.monotonic() - streamer.wall_of(ev.audio_end_ms)) * 1000)

        task = asyncio.create_task(reader())
        i = 0
        while streamer.sent_ms < seconds * 1000:
            await streamer.send(utterances[i % len(utterances)] + bytes(2 * 24 * 1500))
            i += 1
        task.cancel()


async def concurrency(base: str, utterances: list[bytes], k: int, seconds: float) -> list[float]:
    lags: list[float] = []
    await asyncio.gather(*(one_streaming_session(base, utterances, seconds, lags) for _ in range(k)))
    return lags


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
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--sessions", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=18401)
    args = parser.parse_args()

    import psutil

    utterances = _speech_pcm24()
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(args.port, data_dir)
        try:
            wait_ready(args.port)
            base = f"ws://127.0.0.1:{args.port}/v1"
            proc = psutil.Process(server.pid)
            lat = asyncio.run(latency(base, utterances, args.turns))
            print(f"\nVoice-to-voice latency over {len(lat)} turns (server_vad defaults, silence 500 ms)")
            print(f"{'':28}{'p50 ms':>10}{'p95 ms':>10}{'min ms':>10}{'max ms':>10}")
            for label, values in (
                ("end of speech -> 1st audio", lat),
                ("same, minus the 500 ms VAD", [v - SILENCE_MS for v in lat]),
            ):
                print(
                    f"{label:28}{_percentile(values, 50):10.0f}{_percentile(values, 95):10.0f}"
                    f"{min(values):10.0f}{max(values):10.0f}"
                )
            print(f"\nConcurrent sessions at real-time input pace ({args.seconds:.0f} s each)")
            heads = ("sessions", "turns", "lag p50", "lag p95", "lag max", "CPU %", "CPU%/sess")
            print("".join(f"{h:>10}" for h in heads))
            for k in [int(x) for x in args.sessions.split(",")]:
                cpu0 = proc.cpu_times()
                t0 = time.monotonic()
                lags = asyncio.run(concurrency(base, utterances, k, args.seconds))
                cpu1 = proc.cpu_times()
                busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (time.monotonic() - t0) * 100
                print(
                    f"{k:10}{len(lags):10}{_percentile(lags, 50):10.0f}{_percentile(lags, 95):10.0f}"
                    f"{max(lags) if lags else float('nan'):10.0f}{busy:10.0f}{busy / k:10.1f}"
                )
            print("\nlag: speech_stopped arrival minus when its audio_end_ms was sent; growing = behind")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
