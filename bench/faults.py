"""SIGKILLs spread over every stage while turns arrive, on each broker and deployment shape; prints the table
the README's "Delivery guarantees" section quotes.

    python -m bench.faults                       # full size: 100 turns, 30 kills, each shape
    python -m bench.faults --turns 20 --kills 6 --shapes up,rabbitmq
    python -m bench.faults --shapes rabbitmq,redis,up   # order: the first run gets the quietest machine

Shapes: `up` is `voicechain up --workers 2` as a user runs it (embedded Redis, SQLite, the sweeper in the
`up` process, in a network namespace where nothing listens on 127.0.0.1:6379); `redis` and `rabbitmq` are
two workers serving every queue with the sweeper as its own process (`voicechain sweeper`), Redis or a
private RabbitMQ vhost as the broker. Kills alternate between a whole worker (main process and pool child)
and its pool child only. Figures: time from each kill to its turn's completion (p50/p95/max), from the
kill to the sweeper's re-send, and, side by side, the latency of the turns no kill touched: on a shared
2-core machine most of a killed turn's time is the same queueing every turn sees. Needs root (network
namespace) for `up` and RabbitMQ on 127.0.0.1:5672 for `rabbitmq`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines.storage.migrate import upgrade
from tests.faults.harness import FaultStack
from tests.faults.kill_load import LoadResult, assert_exactly_once, run_kill_load
from tests.faults.up_stack import UpStack
from tests.speech import Speaker

SHAPES = ("up", "rabbitmq", "redis")


def run_shape(shape: str, workdir: Path, audio: bytes, args: argparse.Namespace) -> LoadResult:
    workdir.mkdir(parents=True)
    load = {"turns": args.turns, "kills": args.kills, "interval_s": args.interval, "gap_s": args.gap,
            "timeout_s": args.timeout, "max_in_flight": args.in_flight}  # fmt: skip
    if shape == "up":
        up = UpStack(workdir, workers=2)
        try:
            return run_kill_load(up.start(), audio, **load)
        finally:
            up.stop()
    database_url = f"sqlite:///{workdir / 'voicechain.db'}"
    upgrade(database_url)
    stack = FaultStack(workdir, database_url, broker=shape, pooled_workers=2)
    try:
        stack.start().wait_workers_ready()
        return run_kill_load(stack, audio, **load)
    finally:
        stack.stop()


def _per_kill_table(shape: str, result: LoadResult) -> Table:
    """Each kill on its own line: where an outlier's time went (the re-send, the restart, the rest)."""
    table = Table(title=f"{shape}: each kill, seconds after it")
    for column in ("#", "stage", "kind", "re-sent", "stage restarted", "turn done"):
        table.add_column(column)
    for i, (stage, kind, *times) in enumerate(result.per_kill, 1):
        table.add_row(str(i), stage, kind, *("-" if t is None else f"{t:.1f}" for t in times))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds at least between two turns")
    parser.add_argument("--gap", type=float, default=4.0, help="seconds at least between two kills")
    parser.add_argument("--in-flight", type=int, default=3, help="unfinished turns at most; 0: open loop")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the last turns")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the stacks' `finally` stops them
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="vc-bench-faults-"))
    (workdir / "speech").mkdir()
    audio = Speaker(workdir / "speech").wav("Hello there.").read_bytes()
    title = f"{args.turns} turns, at most {args.in_flight} unfinished; {args.kills} SIGKILLs mid-stage"
    table = Table(title=title)
    for column in ("shape", "kills (worker/child)", "lost", "dup", "kill->done p50/p95/max s",
                   "kill->resend p50/max s", "unhurt turn p50 s", "stage attempts"):  # fmt: skip
        table.add_column(column)
    for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
        console.print(f"[bold]{shape}[/bold] ...")
        result = run_shape(shape, workdir / shape, audio, args)
        figures = result.figures()
        console.print(figures)
        console.print(_per_kill_table(shape, result))
        try:
            assert_exactly_once(result)
            verdict = ""
        except AssertionError as exc:
            verdict = f" [red]FAILED: {str(exc)[:200]}[/red]"
        kinds = figures["by_kind"]
        table.add_row(
            shape + verdict,
            f"{figures['kills']} ({kinds.get('worker', 0)}/{kinds.get('child', 0)})",
            str(figures["lost"]),
            str(figures["duplicates"]),
            f"{figures['p50_s']} / {figures['p95_s']} / {figures['max_s']}",
            f"{figures['resend_p50_s']} / {figures['resend_max_s']} ({figures['resent']} re-sent)",
            str(figures["unhurt_turn_p50_s"]),
            str(figures["stage_attempts"]),
        )
    console.print(table)
    console.print(f"logs and databases: {workdir}  (pid {os.getpid()})")


if __name__ == "__main__":
    main()
