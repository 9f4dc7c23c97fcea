"""Every VoiceChain Prometheus metric, defined once so each process (API, stage workers, realtime
pool) exports the same names.

Workers run Celery's prefork pool, so their metrics use prometheus_client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`, set by `workers.metrics` before this module is imported); the gauges
therefore state a `multiprocess_mode`. In a single process the same definitions work unchanged.

The realtime pool imports the helpers at the bottom (`realtime_session`, `observe_voice_to_voice`,
`count_interruption`, `count_realtime_error`) and serves them with `serve_metrics()`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

STAGE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 5, 10)

# --- chained path (stage workers) ------------------------------------------------------------------
STAGE_SECONDS = Histogram(
    "voicechain_stage_seconds",
    "Wall time of one stage run (model work plus its database writes), by stage, provider and outcome.",
    ["stage", "provider", "outcome"],
    buckets=STAGE_BUCKETS,
)
STAGE_ERRORS = Counter(
    "voicechain_stage_errors_total",
    "Stage runs that raised; `retry` will be tried again, `failed` failed the job.",
    ["stage", "disposition"],
)
JOBS_FINISHED = Counter(
    "voicechain_jobs_finished_total",
    "Jobs (turns) that reached a final or held state, by that status.",
    ["status"],
)

# --- realtime pool ----------------------------------------------------------------------------------
REALTIME_SESSIONS = Gauge(
    "voicechain_realtime_sessions",
    "Realtime sessions open now (summed over the live processes of the pool).",
    multiprocess_mode="livesum",
)
VOICE_TO_VOICE_SECONDS = Histogram(
    "voicechain_realtime_voice_to_voice_seconds",
    "From the end of the user's speech to the first audio of the reply.",
    buckets=LATENCY_BUCKETS,
)
INTERRUPTIONS = Counter(
    "voicechain_realtime_interruptions_total", "Replies cut short because the user spoke (barge-in)."
)
REALTIME_ERRORS = Counter(
    "voicechain_realtime_errors_total", "Errors in realtime sessions, by kind.", ["kind"]
)


@contextmanager
def realtime_session() -> Iterator[None]:
    """Count one open realtime session for as long as the block runs."""
    REALTIME_SESSIONS.inc()
    try:
        yield
    finally:
        REALTIME_SESSIONS.dec()


def observe_voice_to_voice(seconds: float) -> None:
    VOICE_TO_VOICE_SECONDS.observe(seconds)


def count_interruption() -> None:
    INTERRUPTIONS.inc()


def count_realtime_error(kind: str) -> None:
    REALTIME_ERRORS.labels(kind).inc()


# --- scrape-time collectors -------------------------------------------------------------------------


class QueueDepthCollector(Collector):
    """`voicechain_queue_depth{queue}`: messages waiting in each Celery queue, read when scraped.

    `read` asks the broker in force for every queue at once (Redis: LLEN of the queue's lists; RabbitMQ:
    a passive queue.declare), so this module needs to know neither. An unreachable broker makes the
    metric absent rather than failing the scrape, and `voicechain_broker_up` says so.
    """

    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("voicechain_broker_up", "1 if the broker answered the last scrape.")
        depth = GaugeMetricFamily(
            "voicechain_queue_depth", "Messages waiting in each stage queue.", labels=["queue"]
        )
        try:
            for queue, waiting in self._read().items():
                depth.add_metric([queue], float(waiting))
        except Exception:  # a scrape must answer even when the broker is down
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield depth


class JobStatusCollector(Collector):
    """`voicechain_jobs{status}`: jobs now in each non-final status, counted when scraped.

    `count` returns {status: n}; only open statuses are counted so the query stays cheap as history grows
    (final outcomes are the `voicechain_jobs_finished_total` counter).
    """

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self._count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("voicechain_jobs", "Jobs now in each open status.", labels=["status"])
        try:
            counts = self._count()
        except Exception:  # a database blip must not fail the scrape
            return
        for status, n in sorted(counts.items()):
            family.add_metric([status], float(n))
        yield family


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_registry() -> CollectorRegistry:
    """What this process group should expose: the merged files of every process in multiprocess mode,
    or the ordinary default registry."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def serve_metrics(port: int, addr: str = "0.0.0.0", registry: CollectorRegistry | None = None) -> Any:
    """Start a `/metrics` HTTP server in a daemon thread (realtime pool, workers); returns the server."""
    server, _thread = start_http_server(port, addr=addr, registry=registry or process_registry())
    return server


def mark_process_dead(pid: int) -> None:
    """Drop a dead child's live gauges (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
