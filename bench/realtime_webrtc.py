"""Voice-to-voice latency over WebRTC next to the direct WebSocket, same turns, same process, one run.

One pool process (local models) runs in a loopback-only network namespace (aioice gathers no 127.0.0.1
candidates, so `lo` gets 127.0.0.2 as well; nothing leaves the namespace). Turns alternate between the
two transports so machine noise falls on both alike; the speech is espeak-ng (not the piper voice the
stack speaks with). Needs root (network namespace) and espeak-ng.

Voice-to-voice (v2v): from the moment the last frame of the user's speech leaves the client to the moment the
first audible reply frame is available to play:
- websocket: the arrival of the first `response.output_audio.delta`, plus the offset of the first
  audible 20 ms inside the reply audio (a client plays deltas as they come);
- webrtc: the first audible frame decoded from the server's Opus track (after aiortc's jitter buffer).
On a noisy machine v2v swings by the models' time; the `media` column is robust to that: from the
reply's first transcript delta (sent just before its first audio, on the same socket / data channel) to
its first audible audio, i.e. what the audio path itself adds.

    python bench/realtime_webrtc.py [--turns 12]

`bench/realtime.py --transport webrtc` may import `run_webrtc_turn` / `run_ws_turn` from here.
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

API_KEY = "bench-webrtc-key"
PORT = 8001
POOL = f"http://127.0.0.1:{PORT}"
SILENCE_MS = 500  # server_vad's silence_duration_ms: part of voice-to-voice by definition
AUDIBLE_RMS = 0.01
QUESTIONS = [
    "What is the capital of Italy?",
    "Name a animal that lives in the sea.",
    "How many legs does a spider have?",
    "What do bees make?",
    "Which season comes after winter?",
    "What is the opposite of hot?",
]


def espeak48(text: str) -> np.ndarray:
    """espeak-ng speech at 48 kHz PCM16, trailing quiet cut so "end of speech" is the last word."""
    import soundfile
    import soxr

    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", wav.name, text], check=True)
        samples, rate = soundfile.read(wav.name, dtype="float32")
    audio = soxr.resample(samples, rate, 48_000) * 0.8
    loud = np.nonzero(np.abs(audio) > 0.02)[0]
    audio = audio[: loud[-1] + 1] if len(loud) else audio
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


def first_audible_ms(pcm24: bytes) -> float:
    samples = np.frombuffer(pcm24, dtype="<i2").astype(np.float32) / 32768
    for i in range(0, len(samples), 480):
        frame = samples[i : i + 480]
        if len(frame) and float(np.sqrt(np.mean(frame**2))) > AUDIBLE_RMS:
            return i / 24.0
    return float("nan")


#: per WebRTC turn: (transcript delta -> output_audio_buffer.started, started -> first audible frame)
SPLIT: list[tuple[float, float]] = []
Turn = tuple[float, float]  # (voice-to-voice ms, ms from the first transcript delta to audible audio)


async def run_ws_turn(conn: Any, speech48: np.ndarray) -> Turn | None:
    """One turn over the WebSocket: speech then silence at real-time pace; ms to first audible reply."""
    import soxr

    pcm = (soxr.resample(speech48.astype(np.float32) / 32768, 48_000, 24_000) * 32767).astype("<i2")
    data = bytes(2 * 24 * 300) + pcm.tobytes()
    step, t0 = 960, time.monotonic()
    sent = 0
    for i in range(0, len(data), step):
        delay = t0 + sent / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await conn.input_audio_buffer.append(audio=base64.b64encode(data[i : i + step]).decode())
        sent += 20
    end_of_speech = time.monotonic()

    async def silence() -> None:
        n = 0
        start = time.monotonic()
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            await conn.input_audio_buffer.append(audio=base64.b64encode(bytes(960)).decode())

    filler = asyncio.create_task(silence())
    first: float | None = None
    said: float | None = None
    audio = b""
    try:
        async for ev in conn:
            if ev.type == "response.output_audio_transcript.delta" and said is None:
                said = time.monotonic()
            if ev.type == "response.output_audio.delta":
                if first is None:
                    first = time.monotonic()
                    filler.cancel()
                audio += base64.b64decode(ev.delta)
            if ev.type == "response.done":
                break
    finally:
        filler.cancel()
    if first is None or said is None:
        return None
    audible = first + first_audible_ms(audio) / 1000
    return (audible - end_of_speech) * 1000, (audible - said) * 1000


async def run_webrtc_turn(peer: Any, speech48: np.ndarray) -> Turn | None:
    """One turn over a WebRTC call; ms from the last speech frame sent to the first audible frame."""
    mark = time.monotonic()
    peer.mic.say(np.concatenate([np.zeros(48 * 300, dtype=np.int16), speech48]))
    while peer.mic.busy:
        await asyncio.sleep(0.005)
    end_of_speech = peer.mic.last_speech_at
    await peer.wait_for("response.done", 60, after=mark)
    await peer.wait_for("output_audio_buffer.stopped", 30, after=mark)
    heard = peer.heard.first_speech_after(end_of_speech)
    said = peer.at("response.output_audio_transcript.delta", after=mark)
    started = peer.at("output_audio_buffer.started", after=mark)
    if heard is None or said is None:
        return None
    if started is not None:  # where the media time goes: the server's track, or the client's receiver
        SPLIT.append(((started - said) * 1000, (heard - started) * 1000))
    return (heard - end_of_speech) * 1000, (heard - said) * 1000


async def measure(turns: int, utterances: list[np.ndarray]) -> dict[str, list[Turn]]:
    from openai import AsyncOpenAI

    from tests.workers.realtime.webrtc_peer import Peer

    results: dict[str, list[Turn]] = {"websocket": [], "webrtc": []}
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=f"ws://127.0.0.1:{PORT}/v1")
    peer = Peer()
    try:
        response = await peer.call(f"{POOL}/v1/realtime/calls", API_KEY)
        assert response.status_code == 201, response.text
        await asyncio.wait_for(peer.opened.wait(), 15)
        await peer.wait_for("session.created", 15)
        async with client.realtime.connect(model="voicechain-local") as conn:
            await conn.recv()
            for turn in range(turns):
                speech = utterances[turn % len(utterances)]
                order = ("websocket", "webrtc") if turn % 2 == 0 else ("webrtc", "websocket")
                for transport in order:
                    if transport == "websocket":
                        value = await run_ws_turn(conn, speech)
                    else:
                        value = await run_webrtc_turn(peer, speech)
                    if value is not None:
                        results[transport].append(value)
                    await asyncio.sleep(0.5)
    finally:
        await peer.close()
    return results


def start_pool(ns: Any, data_dir: str) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
        "VOICECHAIN_API_KEYS": API_KEY, "VOICECHAIN_DATA_DIR": data_dir, "PYTHONPATH": str(root),
    }  # fmt: skip
    return subprocess.Popen(
        [*ns.exec_prefix(), sys.executable, "-m", "api.cli", "realtime", "--port", str(PORT)],
        env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=12)
    args = parser.parse_args()

    import httpx

    from tests.multihost.netns import can_make_namespaces
    from tests.workers.realtime.webrtc_peer import Namespace

    reason = can_make_namespaces()
    if reason:
        sys.exit(f"needs a network namespace: {reason}")
    utterances = [espeak48(q) for q in QUESTIONS]
    ns = Namespace()
    with tempfile.TemporaryDirectory() as data_dir:
        pool = start_pool(ns, data_dir)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    ns.run(lambda: httpx.get(POOL + "/healthz", timeout=1, trust_env=False))
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or pool.poll() is not None:
                        sys.exit("the pool did not start")
                    time.sleep(0.3)
            results = ns.arun(lambda: measure(args.turns, utterances))
        finally:
            pool.terminate()
            pool.wait(30)
            ns.destroy()
    print(f"\nSame turns alternating on one pool process ({args.turns} each, espeak-ng speech)")
    print(f"{'transport':12}{'turns':>7}{'v2v p50':>10}{'v2v p95':>10}{'media p50':>11}{'media p95':>11}")
    p50 = {}
    for name, turns in results.items():
        v2v, media = [t[0] for t in turns], [t[1] for t in turns]
        p50[name] = (_pct(v2v, 50), _pct(media, 50))
        print(f"{name:12}{len(turns):7}{_pct(v2v, 50):10.0f}{_pct(v2v, 95):10.0f}"
              f"{_pct(media, 50):11.0f}{_pct(media, 95):11.0f}")  # fmt: skip
    server, client = [x[0] for x in SPLIT], [x[1] for x in SPLIT]
    print(f"webrtc media split, p50: server track {_pct(server, 50):.0f} ms "
          f"(transcript delta -> output_audio_buffer.started), client receive {_pct(client, 50):.0f} ms "
          f"(started -> first audible frame: RTP, aiortc's jitter buffer, Opus decode)")  # fmt: skip
    print("\nv2v: last speech frame sent -> first audible reply audio at the client (ms)")
    print("media: first transcript delta of the reply -> its first audible audio (the audio path alone)")
    print(f"webrtc - websocket at p50: v2v {p50['webrtc'][0] - p50['websocket'][0]:+.0f} ms, "
          f"media {p50['webrtc'][1] - p50['websocket'][1]:+.0f} ms (target: within 60 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
