"""Turns per minute one worker of each stage sustains: one Celery worker process per queue (stt, agent,
policy, tts; concurrency 1 each, as deployed), a backlog of N spoken turns published at once, and the
busy time each stage's worker spent per turn (stage_runs.duration_ms). Per-worker capacity is
60 / median stage seconds; the run's wall time gives what the whole 4-worker set did together on this
machine. Usage: `python bench/throughput.py [--turns 12]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.chain import QUESTIONS, new_turn, start_backend
from pipelines.settings import STAGES, Settings
from pipelines.stages.context import StageContext
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageRun, Turn
from tests.services import Processes, worker_command
from tests.speech import Speaker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=12)
    args = parser.parse_args()
    workdir, redis, settings, env = start_backend("vc-throughput-")
    from workers.dispatch import publish

    processes = Processes(log_dir=workdir)
    for stage in STAGES:
        processes.start(stage, worker_command(stage, f"{stage}@bench"), env)
    ctx = StageContext(settings)
    speaker = Speaker(workdir)
    audio = [speaker.wav(q).read_bytes() for q in QUESTIONS]
    try:
        warm = new_turn(ctx, audio[0])
        publish(settings.resolved_database_url, warm)
        wait(settings, [warm], 180)
        ids = [new_turn(ctx, audio[i % len(audio)]) for i in range(args.turns)]
        started = time.perf_counter()
        for turn_id in ids:
            publish(settings.resolved_database_url, turn_id)
        wait(settings, ids, 600)
        wall = time.perf_counter() - started
        with session_scope(settings.resolved_database_url) as session:
            runs = session.query(StageRun).filter(StageRun.turn_id.in_(ids)).all()
            by_stage = {
                s: [r.duration_ms / 1000 for r in runs if r.stage == s and r.duration_ms] for s in STAGES
            }
        print(f"{args.turns} turns, 4 workers (one per stage, concurrency 1), {os.cpu_count()} cores")
        print(f"backlog drained in {wall:.1f} s: {60 * args.turns / wall:.1f} turns/min for the whole set")
        for stage, values in by_stage.items():
            median = statistics.median(values)
            print(
                f"{stage:7s} median {median:.3f} s/turn  -> {60 / median:6.1f} turns/min per worker "
                f"(p90 {statistics.quantiles(values, n=10)[-1]:.3f} s)"
            )
    finally:
        processes.stop_all()
        redis.stop()


def wait(settings: Settings, ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(settings.resolved_database_url) as session:
            done = session.query(Turn).filter(Turn.id.in_(ids), Turn.finished_at.is_not(None)).count()
        if done == len(ids):
            return
        time.sleep(0.2)
    raise SystemExit(f"turns did not finish within {timeout_s} s")


if __name__ == "__main__":
    main()
