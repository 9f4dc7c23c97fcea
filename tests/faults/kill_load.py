"""Turns arriving at a steady pace while the worker running a stage is SIGKILLed, round robin over the
stages; then the audit (every turn ends once: one reply, one audio file, one webhook) and the time from
each kill to its turn's completion. Shared by tests/faults/test_kill_workers.py (CI size),
tests/faults/test_up_kill.py and bench/faults.py (full size).

Kinds of kill, alternating: `worker` SIGKILLs the whole Celery worker (main process and pool child: the
OOM killer, a node lost), which on Redis leaves its message unacknowledged until the sweeper sees the
liveness key expire; `child` SIGKILLs only the pool process, whose main process hands the message back.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from pipelines.settings import STAGES
from pipelines.storage.models import TurnStatus, utcnow

KINDS = ("worker", "child")


class Target(Protocol):
    """A running stack the load can be put on (FaultStack, UpStack)."""

    def submit_turn(self, audio: bytes, callback: bool) -> httpx.Response: ...
    def live_turn(self, stage: str) -> tuple[str, str] | None: ...
    def kill(self, worker: str, kind: str) -> bool: ...
    def statuses(self, ids: list[str]) -> Counter[str]: ...
    def wait_all_final(self, ids: list[str], timeout_s: float) -> Counter[str]: ...
    def audit(self, ids: list[str]) -> dict[str, Any]: ...
    def turn_times(self, ids: list[str]) -> dict[str, tuple[Any, Any, dict[str, Any]]]: ...


@dataclass
class Kill:
    stage: str
    kind: str
    turn_id: str
    at: datetime


@dataclass
class LoadResult:
    turns: int
    ids: list[str]
    refused: list[str]
    kills: list[Kill]
    statuses: Counter[str]
    audit: dict[str, Any]
    recovery_s: list[float] = field(default_factory=list)  # kill -> its turn finished
    redispatch_s: list[float] = field(default_factory=list)  # kill -> the killed stage started again
    resend_s: list[float] = field(default_factory=list)  # kill -> the sweeper re-published the turn
    baseline_s: list[float] = field(default_factory=list)  # created -> finished, turns no kill touched
    #: per kill, in order: (stage, kind, kill -> re-send, kill -> stage restarted, kill -> done); None: never
    per_kill: list[tuple[str, str, float | None, float | None, float | None]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.turns - self.statuses[TurnStatus.SUCCEEDED]

    @property
    def duplicates(self) -> int:
        return sum(
            n - 1
            for counts in ("audio_rows", "delivery_rows", "webhook_posts")
            for n in self.audit[counts].values()
            if n > 1
        )

    def figures(self) -> dict[str, object]:
        return {
            "turns": self.turns,
            "kills": len(self.kills),
            "by_stage": dict(Counter(k.stage for k in self.kills)),
            "by_kind": dict(Counter(k.kind for k in self.kills)),
            "lost": self.lost,
            "duplicates": self.duplicates,
            "p50_s": percentile(self.recovery_s, 50),
            "p95_s": percentile(self.recovery_s, 95),
            "max_s": round(max(self.recovery_s), 1) if self.recovery_s else None,
            "resent": len(self.resend_s),
            "resend_p50_s": percentile(self.resend_s, 50),
            "resend_max_s": round(max(self.resend_s), 1) if self.resend_s else None,
            "restart_p50_s": percentile(self.redispatch_s, 50),
            "restart_p95_s": percentile(self.redispatch_s, 95),
            "unhurt_turn_p50_s": percentile(self.baseline_s, 50),
            "stage_attempts": self.audit["stage_attempts"],
            "seconds": round(self.seconds, 1),
        }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)


def kill_spread(
    target: Target,
    stop: threading.Event,
    wanted: int,
    kills: list[Kill],
    gap_s: float,
    posted: Any = None,
    turns: int = 0,
) -> None:
    """Round robin over the stages: wait until a live process runs that stage, then SIGKILL it.

    With `posted` (a callable: turns posted so far) the kills are spread over the run, kill k waiting
    for k x turns/wanted turns to be posted, instead of landing as fast as stages start."""
    kinds = itertools.cycle(KINDS)
    for stage in itertools.cycle(STAGES):
        if stop.is_set() or len(kills) >= wanted:
            return
        while posted is not None and posted() < len(kills) * turns / wanted and not stop.wait(0.3):
            pass
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            found = target.live_turn(stage)
            if found:
                turn_id, worker = found
                kind = next(kinds)
                at = utcnow()
                if target.kill(worker, kind):
                    kills.append(Kill(stage, kind, turn_id, at))
                break
            time.sleep(0.02)
        stop.wait(gap_s)


#: how long turns go on being posted beyond the planned ones while kills still wait for a stage to land
#: in (on a quiet machine a turn took 0.6 s: 10 planned + 20 more ran out before the third of 4 kills,
#: 5 s apart and round robin over the stages, found its stage running)
EXTRA_POSTING_S = 120.0


def run_kill_load(
    target: Target,
    audio: bytes,
    *,
    turns: int,
    kills: int,
    interval_s: float,
    gap_s: float,
    timeout_s: float,
    max_in_flight: int | None = None,
) -> LoadResult:
    """Post `turns` turns one every `interval_s` while `kills` SIGKILLs land mid-stage, `gap_s` apart.

    With `max_in_flight`, a turn is posted only while fewer than that many are unfinished (a closed
    loop): the figures then measure recovery, not a backlog that a shared machine cannot drain."""
    started = time.monotonic()
    done_kills: list[Kill] = []
    stop = threading.Event()
    ids: list[str] = []
    killer = threading.Thread(
        target=kill_spread,
        args=(target, stop, kills, done_kills, gap_s, lambda: len(ids), turns),
        daemon=True,
    )
    killer.start()
    refused: list[str] = []
    posted = 0
    # The planned turns can run out before the kills have all found a stage to land in (a loaded machine:
    # a killed worker reloads its models; a quiet one: turns finish between kills): more turns then.
    extra_until = time.monotonic() + EXTRA_POSTING_S  # counted from the end of the planned turns
    while posted < turns or (
        len(done_kills) < kills and time.monotonic() < extra_until and killer.is_alive()
    ):
        if posted < turns:
            extra_until = time.monotonic() + EXTRA_POSTING_S
        posted += 1
        while max_in_flight and ids and _open(target, ids) >= max_in_flight:
            time.sleep(0.3)
        try:
            response = target.submit_turn(audio, callback=True)
        except httpx.HTTPError as exc:
            refused.append(f"{type(exc).__name__}: {exc}")
        else:
            if response.status_code == 202:
                ids.append(response.json()["id"])
            else:
                refused.append(f"{response.status_code}: {response.text[:200]}")
        time.sleep(interval_s)
    statuses = target.wait_all_final(ids, timeout_s=timeout_s)
    stop.set()
    killer.join(30)
    deadline = time.monotonic() + 30  # webhooks go through their own queue: give the last ones a moment
    while time.monotonic() < deadline and len(target.audit(ids)["webhook_posts"]) < len(ids):
        time.sleep(0.5)
    result = LoadResult(len(ids) + len(refused), ids, refused, done_kills, statuses, target.audit(ids))
    times = target.turn_times(ids)
    for kill in done_kills:
        created, end, starts = times[kill.turn_id]
        done = resend = restart = None
        if end is not None:
            done = (end - kill.at).total_seconds()
            result.recovery_s.append(done)
        published = starts.get("published")
        if published is not None and published > kill.at:
            resend = (published - kill.at).total_seconds()
            result.resend_s.append(resend)
        restarted = starts.get(kill.stage)
        if restarted is not None and restarted > kill.at:
            restart = (restarted - kill.at).total_seconds()
            result.redispatch_s.append(restart)
        result.per_kill.append((kill.stage, kill.kind, resend, restart, done))
    hurt = {kill.turn_id for kill in done_kills}
    for turn_id, (created, end, _) in times.items():
        if turn_id not in hurt and end is not None:
            result.baseline_s.append((end - created).total_seconds())
    result.seconds = time.monotonic() - started
    return result


def _open(target: Target, ids: list[str]) -> int:
    counts = target.statuses(ids)
    return len(ids) - sum(counts[status] for status in TurnStatus.FINAL)


def assert_exactly_once(result: LoadResult) -> None:
    """Every accepted turn succeeded, with exactly one reply, audio file, delivery row and webhook POST."""
    ids = result.ids
    assert not result.refused, result.refused
    assert result.statuses[TurnStatus.SUCCEEDED] == len(ids), result.statuses
    audit = result.audit
    assert audit["replies"] == len(ids)
    assert set(audit["audio_rows"]) == set(ids) and set(audit["audio_rows"].values()) == {1}
    assert set(audit["delivery_rows"]) == set(ids) and set(audit["delivery_rows"].values()) == {1}
    assert set(audit["webhook_posts"]) == set(ids) and set(audit["webhook_posts"].values()) == {1}
