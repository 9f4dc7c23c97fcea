"""Per-stage and end-to-end latency of the chained path, and what the queue costs.

For each of N turns the same spoken question runs twice, interleaved so both see the same machine noise:
once with every stage called in this process (`run_turn_inline`), once through the real chain (Redis
broker, a Celery worker process). Orchestration overhead = chain end-to-end minus the stage time the
worker itself measured. Usage: `python bench/chain.py [--turns 20]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from pipelines.settings import STAGES, Settings
from pipelines.stages.context import StageContext
from pipelines.stages.runner import run_turn_inline
from pipelines.storage.database import session_scope
from pipelines.storage.migrate import upgrade
from pipelines.storage.turns import add_artifact, add_turn, get_turn, open_conversation
from tests.services import Processes, RedisServer, free_port, worker_command
from tests.speech import Speaker

QUESTIONS = [
    "What is the capital of France?",
    "Can you tell me a fun fact about dolphins?",
    "How do I make a cup of tea?",
    "What should I do this weekend?",
    "Why is the sky blue?",
]


def new_turn(ctx: StageContext, audio: bytes) -> str:
    with session_scope(ctx.database_url) as session:
        conversation = open_conversation(session, owner="bench", agent="Assistant", conversation_id=None)
        turn = add_turn(session, conversation=conversation, owner="bench", agent="Assistant")
        stored = ctx.store.put(f"{turn.id}/input.wav", audio)
        add_artifact(
            session,
            turn,
            kind="input_audio",
            path=stored.path,
            content_type="audio/wav",
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
        )
        return turn.id


def wait_chain(ctx: StageContext, turn_id: str, timeout_s: float = 120) -> tuple[float, dict[str, float]]:
    """Seconds from publish to the turn's final commit, and the worker's own per-stage durations."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(ctx.database_url) as session:
            turn = get_turn(session, turn_id)
            if turn.status == "succeeded" and turn.finished_at and turn.enqueued_at:
                stages = {s.stage: (s.duration_ms or 0) / 1000 for s in turn.stages}
                # enqueued_at is stamped just after publishing; created_at is before: use created_at
                return (turn.finished_at - turn.created_at).total_seconds(), stages
            if turn.status == "failed":
                raise RuntimeError(f"turn failed: {turn.error}")
        time.sleep(0.005)
    raise TimeoutError(turn_id)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_backend(prefix: str) -> tuple[Path, RedisServer, Settings, dict[str, str]]:
    """A private Redis and SQLite database, exported to this process and returned for the workers."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    redis = RedisServer(port=free_port(), data_dir=workdir / "redis")
    redis.start()
    settings = Settings(data_dir=workdir / "data", redis_url=redis.url)
    upgrade(settings.resolved_database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
        "VOICECHAIN_DATA_DIR": str(settings.data_dir), "VOICECHAIN_REDIS_URL": redis.url,
        "VOICECHAIN_DATABASE_URL": settings.resolved_database_url,
    }  # fmt: skip
    os.environ.update(env)
    return workdir, redis, settings, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    workdir, redis, settings, env = start_backend("vc-bench-")
    from workers.dispatch import publish  # after the environment is set: the Celery app reads it once

    processes = Processes(log_dir=workdir)
    processes.start("worker", worker_command(",".join(STAGES), "bench@local"), env)
    ctx = StageContext(settings)
    ctx.warm_up(STAGES)
    speaker = Speaker(workdir)
    audio = [speaker.wav(q).read_bytes() for q in QUESTIONS]
    try:
        publish(settings.resolved_database_url, new_turn(ctx, audio[0]))  # warm the worker's models
        time.sleep(8)
        inline_total, chain_total, overhead = [], [], []
        inline_stage: dict[str, list[float]] = {s: [] for s in STAGES}
        chain_stage: dict[str, list[float]] = {s: [] for s in STAGES}
        for i in range(args.turns):
            clip = audio[i % len(audio)]
            started = time.perf_counter()
            timings = run_turn_inline(ctx, new_turn(ctx, clip))
            inline_total.append(time.perf_counter() - started)
            for stage, seconds in timings.items():
                inline_stage[stage].append(seconds)
            turn_id = new_turn(ctx, clip)
            publish(settings.resolved_database_url, turn_id)
            end_to_end, stages = wait_chain(ctx, turn_id)
            chain_total.append(end_to_end)
            overhead.append(end_to_end - sum(stages.values()))
            for stage, seconds in stages.items():
                chain_stage[stage].append(seconds)
    finally:
        processes.stop_all()
        redis.stop()
    table = Table(title=f"Chained path, {args.turns} turns, local models, {os.cpu_count()} cores")
    for column in ("", "inline p50 s", "inline p95 s", "chain p50 s", "chain p95 s"):
        table.add_column(column, justify="right" if column else "left")
    for stage in STAGES:
        table.add_row(
            stage,
            *(
                f"{f(v):.3f}"
                for v in (inline_stage[stage], chain_stage[stage])
                for f in (statistics.median, lambda x: pct(x, 0.95))
            ),
        )
    table.add_row(
        "end to end",
        *(
            f"{f(v):.3f}"
            for v in (inline_total, chain_total)
            for f in (statistics.median, lambda x: pct(x, 0.95))
        ),
    )
    table.add_row(
        "orchestration overhead", "", "", f"{statistics.median(overhead):.3f}", f"{pct(overhead, 0.95):.3f}"
    )
    console = Console()
    console.print(table)
    ratio = statistics.median(chain_total) / statistics.median(inline_total)
    console.print(f"chain / inline end-to-end (medians, side by side): {ratio:.2f}x")


if __name__ == "__main__":
    main()
