"""What the API-origin hop (`WS /v1/realtime` on the API, relayed to the pool) costs, side by side.

One run starts Redis, a realtime pool (`voicechain realtime --processes 2`, local models) and the API
(one uvicorn process; `bench/realtime_stack.py`), then measures, alternating direct (pool port) and
gateway (API port) so both see the same machine noise:

1. added latency per frame: echo-timed round trips of a 40 ms audio frame (`input_audio_buffer.append`,
   ~2.6 KB of base64) followed by `input_audio_buffer.clear`, timed until `input_audio_buffer.cleared`
   comes back; turn detection is off, so the pool does no model work and the figure is transport;
2. CPU per session in the API process: N sessions stream 40 ms frames at real-time pace (25 frames/s,
   the round trip above for each) through the gateway for a fixed time; the API process's CPU seconds
   (from /proc) over that time, per session;
3. 16 sessions at once, each at real-time pace: round-trip p50/p95 direct and through the gateway.

Usage: `python bench/gateway.py [--frames 300] [--seconds 10] [--sessions 16]`. Voice-to-voice through the
gateway next to the direct WebSocket (and WebRTC): `python bench/realtime.py --transport websocket,gateway`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets
from rich.console import Console
from rich.table import Table

from bench.realtime_stack import Stack

KEY = "vc_bench_gateway_key_0123456789"
FRAME = base64.b64encode(bytes(2 * 24 * 40)).decode()  # 40 ms of 24 kHz PCM16 silence
APPEND = json.dumps({"type": "input_audio_buffer.append", "audio": FRAME})
CLEAR = json.dumps({"type": "input_audio_buffer.clear"})
MANUAL = json.dumps(
    {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
)


async def open_session(url: str) -> Any:
    ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}, max_size=None)
    await _until(ws, "session.created")
    await ws.send(MANUAL)
    await _until(ws, "session.updated")
    return ws


async def _until(ws: Any, kind: str) -> None:
    while True:
        if f'"{kind}"' in await ws.recv():
            return


async def round_trip(ws: Any) -> float:
    started = time.perf_counter()
    await ws.send(APPEND)
    await ws.send(CLEAR)
    await _until(ws, "input_audio_buffer.cleared")
    return (time.perf_counter() - started) * 1000


async def paced(ws: Any, seconds: float, out: list[float]) -> None:
    """Real-time pace: one 40 ms frame (and its echo) every 40 ms."""
    deadline = time.perf_counter() + seconds
    next_at = time.perf_counter()
    while time.perf_counter() < deadline:
        out.append(await round_trip(ws))
        next_at += 0.040
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    direct: str, gateway: str, api_pid: int, frames: int, seconds: float, sessions: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    # 1. one session each way, frames interleaved
    a, b = await open_session(direct), await open_session(gateway)
    rtt: dict[str, list[float]] = {"direct": [], "gateway": []}
    for _ in range(20):  # warm-up
        await round_trip(a), await round_trip(b)
    for _ in range(frames):
        rtt["direct"].append(await round_trip(a))
        rtt["gateway"].append(await round_trip(b))
    await a.close(), await b.close()
    results["single"] = rtt
    # 2. CPU of the API process per gateway session, at real-time pace, less what it uses idle
    before, started = cpu_seconds(api_pid), time.perf_counter()
    await asyncio.sleep(seconds / 2)
    idle = (cpu_seconds(api_pid) - before) / (time.perf_counter() - started)
    cpu: dict[int, float] = {}
    for n in (1, min(4, sessions), sessions):
        conns = [await open_session(gateway) for _ in range(n)]
        before, started = cpu_seconds(api_pid), time.perf_counter()
        await asyncio.gather(*(paced(c, seconds, []) for c in conns))
        used, wall = cpu_seconds(api_pid) - before, time.perf_counter() - started
        cpu[n] = max(0.0, used / wall - idle) / n * 100  # % of one core per session
        for c in conns:
            await c.close()
    results["cpu"] = cpu
    # 3. many sessions at once, direct then gateway then direct again (noise shows as a spread)
    many: dict[str, list[float]] = {"direct": [], "gateway": []}
    for label, url in (("direct", direct), ("gateway", gateway), ("direct", direct), ("gateway", gateway)):
        conns = [await open_session(url) for _ in range(sessions)]
        await asyncio.gather(*(paced(c, seconds / 2, many[label]) for c in conns))
        for c in conns:
            await c.close()
    results["many"] = many
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=16)
    args = parser.parse_args()
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), KEY, processes=2, max_sessions=max(8, args.sessions), with_api=True)
        try:
            stack.start()
            console.print("stack up; measuring")
            results = asyncio.run(
                measure(
                    f"{stack.pool_ws}/realtime",
                    f"ws://127.0.0.1:{stack.api_port}/v1/realtime",
                    stack.pid("api"),
                    args.frames,
                    args.seconds,
                    args.sessions,
                )
            )
        finally:
            stack.stop()
    report(console, results, args.sessions)


def report(console: Console, results: dict[str, Any], sessions: int) -> None:
    table = Table(title="Realtime: direct to the pool vs through the API-origin gateway (ms, round trip)")
    columns = ("direct p50", "gateway p50", "added p50", "direct p95", "gateway p95", "added p95", "n")
    table.add_column("measure")
    for column in columns:
        table.add_column(column, justify="right")
    rows_by_name = {
        "1 session, 40 ms frame + echo": results["single"],
        f"{sessions} sessions at once, real-time pace": results["many"],
    }
    for name, rows in rows_by_name.items():
        d, g = rows["direct"], rows["gateway"]
        table.add_row(
            name,
            f"{statistics.median(d):.2f}", f"{statistics.median(g):.2f}",
            f"{statistics.median(g) - statistics.median(d):+.2f}",
            f"{pct(d, 0.95):.2f}", f"{pct(g, 0.95):.2f}", f"{pct(g, 0.95) - pct(d, 0.95):+.2f}",
            f"{len(d)}/{len(g)}",
        )  # fmt: skip
    console.print(table)
    cpu = Table(title="API process CPU per gateway session (25 frames/s in, 25 echoes out)")
    cpu.add_column("sessions", justify="right")
    cpu.add_column("% of one core per session", justify="right")
    cpu.add_column("sessions per core (extrapolated)", justify="right")
    for n, share in results["cpu"].items():
        cpu.add_row(str(n), f"{share:.2f}", f"{100 / share:.0f}" if share > 0 else "-")
    console.print(cpu)


if __name__ == "__main__":
    main()
