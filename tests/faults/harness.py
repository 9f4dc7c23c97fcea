"""A whole chained stack as real processes that a test can hurt: its own Redis (stoppable, flushable) or
a private RabbitMQ vhost as the broker, an API, one Celery worker per stage queue plus a webhook worker,
the sweeper as its own process, and a webhook sink that counts what it receives. Timings are shortened
(stall detection in seconds, small LLM replies) so a fault test runs in a couple of minutes on two cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import func, select

from pipelines.settings import STAGES, WEBHOOK_QUEUE
from pipelines.storage.database import session_scope
from pipelines.storage.models import Artifact, StageRun, Turn, TurnStatus, WebhookDelivery
from tests.faults.brokers import RabbitVhost
from tests.services import (
    Processes,
    RedisServer,
    api_command,
    free_port,
    wait_http_ok,
    worker_command,
)
from workers import liveness

API_KEY = "vc_fault_key_0123456789"
WEBHOOK_SECRET = "whsec_fault_tests"


class WebhookSink:
    """An HTTP server on loopback that answers 200 and counts (job id, event) pairs."""

    def __init__(self) -> None:
        self.received: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with sink.lock:
                    sink.received[(body["job"]["id"], body["type"])] += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class DatabaseAudit:
    """What the database (and the webhook sink) says about a set of turns; needs `database_url`, `sink`."""

    database_url: str
    sink: WebhookSink

    def running_turns(self, stage: str) -> list[tuple[str, str]]:
        """(turn, worker node name) of the runs of `stage` marked running, latest first."""
        query = select(StageRun.turn_id, StageRun.worker).where(
            StageRun.stage == stage, StageRun.status == "running"
        )
        with session_scope(self.database_url) as session:
            rows = session.execute(query.order_by(StageRun.started_at.desc()).limit(8)).all()
        return [(turn_id, worker or "") for turn_id, worker in rows]

    def turn_times(self, ids: list[str]) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
        """Per turn: (created, finished, {stage: its last start, "published": its last publish})."""
        with session_scope(self.database_url) as session:
            turns = session.execute(
                select(Turn.id, Turn.created_at, Turn.finished_at, Turn.enqueued_at).where(Turn.id.in_(ids))
            ).all()
            runs = session.execute(
                select(StageRun.turn_id, StageRun.stage, StageRun.started_at).where(StageRun.turn_id.in_(ids))
            ).all()
        starts: dict[str, dict[str, Any]] = {}
        for turn_id, stage, started in runs:
            starts.setdefault(turn_id, {})[stage] = started
        return {
            turn_id: (created, end, starts.get(turn_id, {}) | {"published": published})
            for turn_id, created, end, published in turns
        }

    def running_stages(self) -> set[str]:
        with session_scope(self.database_url) as session:
            return set(session.scalars(select(StageRun.stage).where(StageRun.status == "running")).all())

    def statuses(self, ids: list[str]) -> Counter[str]:
        with session_scope(self.database_url) as session:
            rows = session.scalars(select(Turn.status).where(Turn.id.in_(ids))).all()
        return Counter(rows)

    def wait_all_final(self, ids: list[str], timeout_s: float) -> Counter[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            counts = self.statuses(ids)
            if sum(counts[s] for s in TurnStatus.FINAL) == len(ids):
                return counts
            time.sleep(0.5)
        return self.statuses(ids)

    def audit(self, ids: list[str]) -> dict[str, Any]:
        """Per-turn counts of replies, spoken answers and webhooks; anything other than one is a duplicate
        (or a loss)."""
        with session_scope(self.database_url) as session:
            outputs = Counter(
                session.scalars(
                    select(Artifact.turn_id).where(Artifact.kind == "output_audio", Artifact.turn_id.in_(ids))
                ).all()
            )
            deliveries = Counter(
                session.scalars(select(WebhookDelivery.turn_id).where(WebhookDelivery.turn_id.in_(ids))).all()
            )
            replies = int(
                session.scalar(
                    select(func.count()).where(Turn.id.in_(ids), Turn.reply_text.is_not(None))
                ) or 0
            )  # fmt: skip
            attempts = int(
                session.scalar(select(func.sum(StageRun.attempts)).where(StageRun.turn_id.in_(ids))) or 0
            )
        with self.sink.lock:
            posts = Counter(job for (job, _event), n in self.sink.received.items() for _ in range(n))
        return {
            "replies": replies,
            "audio_rows": outputs,
            "delivery_rows": deliveries,
            "webhook_posts": posts,
            "stage_attempts": attempts,
        }


@dataclass
class FaultStack(DatabaseAudit):
    tmp: Path
    database_url: str
    #: `redis` (also the broker) or `rabbitmq` (a private vhost; Redis still holds liveness keys and locks)
    broker: str = "redis"
    #: run `voicechain sweeper` as its own process (the deployment shape)
    with_sweeper: bool = True
    #: >0: this many workers each consuming every queue (the `voicechain up --workers N` shape, where a
    #: killed worker's turn goes on in another), instead of one worker per queue
    pooled_workers: int = 0
    redis: RedisServer = field(init=False)
    vhost: RabbitVhost | None = None
    worker_queues: dict[str, str] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)
    processes: Processes = field(init=False)
    sink: WebhookSink = field(init=False)
    base_url: str = ""
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")}
        env.update({
            "VOICECHAIN_DATA_DIR": str(self.tmp / "data"),
            "VOICECHAIN_DATABASE_URL": self.database_url,
            "VOICECHAIN_REDIS_URL": self.redis.url,
            "VOICECHAIN_BROKER_URL": self.vhost.url if self.vhost else "",
            "VOICECHAIN_API_KEYS": API_KEY,
            "VOICECHAIN_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "VOICECHAIN_LLM_MAX_TOKENS": "12",
            "VOICECHAIN_STALL_AFTER_S": "20",
            "VOICECHAIN_SWEEP_INTERVAL_S": "1",
            "VOICECHAIN_TASK_SOFT_TIME_LIMIT_S": "30",
            "VOICECHAIN_TASK_TIME_LIMIT_S": "40",
            "VOICECHAIN_STAGE_MAX_RETRIES": "8",
            "VOICECHAIN_WORKER_STUCK_AFTER_S": "15",
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        return env

    @property
    def broker_url(self) -> str:
        return self.vhost.url if self.vhost else self.redis.url

    def start(self) -> FaultStack:
        if self.broker == "rabbitmq":
            self.vhost = RabbitVhost().create()
        self.redis = RedisServer(port=free_port(), data_dir=self.tmp / "redis")
        self.redis.start()
        self.processes = Processes(log_dir=self.tmp)
        self.sink = WebhookSink()
        env, port = self.env(), free_port()
        self.processes.start("api", api_command(port), env)
        if self.pooled_workers:
            for i in range(self.pooled_workers):
                self.start_worker(f"w{i + 1}", ",".join((*STAGES, WEBHOOK_QUEUE)))
        else:
            for queue in (*STAGES, WEBHOOK_QUEUE):
                self.start_worker(queue)
        if self.with_sweeper:
            self.processes.start("sweeper", [sys.executable, "-m", "api.cli", "sweeper"], env)
        threading.Thread(target=self._supervise, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{port}"
        wait_http_ok(self.base_url + "/readyz", timeout_s=90)
        return self

    def start_worker(self, name: str, queues: str | None = None) -> None:
        """Start (or restart) worker `name`, consuming `queues` (default: the queue of the same name)."""
        queues = queues or self.worker_queues.get(name, name)
        self.worker_queues[name] = queues
        self.starts[name] = self.starts.get(name, 0) + 1
        env = self.env() | {"VOICECHAIN_WORKER_QUEUES": queues}
        log = f"worker-{name}" + (f"-{self.starts[name]}" if self.starts[name] > 1 else "")
        self.workers[name] = self.processes.start(log, worker_command(queues, self.worker_name(name)), env)

    def wait_workers_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            logs = [self.processes.log(f"worker-{name}") for name in self.workers]
            if all(" ready." in log for log in logs):
                return
            time.sleep(0.3)
        raise RuntimeError("workers did not become ready")

    def _supervise(self) -> None:
        """Restart a worker process that exits, as `voicechain up` or Kubernetes would (its consumer
        watchdog exits a worker whose consumer died after a broker restart)."""
        while not self._stopping.wait(1.0):
            for queue, process in list(self.workers.items()):
                if process.poll() is not None:
                    self.start_worker(queue)

    def stop(self) -> None:
        self._stopping.set()
        self.processes.stop_all()
        self.redis.stop()
        self.sink.close()
        if self.vhost:
            self.vhost.delete()

    def client(self, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    # --- faults -----------------------------------------------------------------------------------

    def pool_children(self, queue: str) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.workers[queue].pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def kill_pool_child(self, queue: str) -> int:
        """SIGKILL the process running `queue`'s tasks; Celery's master starts a new one."""
        killed = 0
        for pid in self.pool_children(queue):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        return killed

    def kill_worker(self, queue: str) -> int:
        """SIGKILL `queue`'s whole worker (main process and pool child, as the OOM killer or a lost host
        would); the supervisor thread starts a new one. Returns how many processes were killed."""
        process = self.workers[queue]
        victims = [process.pid, *self.pool_children(queue)]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return 0
        return len(victims)

    def worker_name(self, queue: str) -> str:
        return f"{queue}@fault"

    # --- the kill-load protocol (tests/faults/kill_load.py) -----------------------------------------

    def submit_turn(self, audio: bytes, callback: bool) -> httpx.Response:
        with self.client() as client:
            return submit(client, audio, self.sink.url if callback else None)

    def live_turn(self, stage: str) -> tuple[str, str] | None:
        """(turn, worker key) of a turn whose `stage` a live worker runs right now (liveness key held)."""
        client = self._redis()
        for turn_id, node in self.running_turns(stage):
            worker = node.split("@", 1)[0]
            if worker in self.workers and client.exists(liveness.key(turn_id, stage)):
                return turn_id, worker
        return None

    def kill(self, worker: str, kind: str) -> bool:
        return bool(self.kill_worker(worker) if kind == "worker" else self.kill_pool_child(worker))

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url, socket_timeout=5)

    def restart_redis(self, *, flush: bool) -> None:
        """Stop Redis (after FLUSHALL if asked: every queued message is gone), start it on the same port."""
        if flush:
            subprocess.run([redis_cli(), "-p", str(self.redis.port), "FLUSHALL"], check=False,
                           capture_output=True, timeout=10)  # fmt: skip
        self.redis.stop()
        self.redis.start()


def redis_cli() -> str:
    from api.cli.embedded_redis import redis_server_binary

    binary = Path(redis_server_binary())
    cli = binary.with_name("redis-cli")
    return str(cli) if cli.exists() else "redis-cli"


def submit(client: httpx.Client, audio: bytes, callback_url: str | None) -> httpx.Response:
    data = {"callback_url": callback_url} if callback_url else {}
    return client.post("/v1/jobs", files={"file": ("q.wav", audio, "audio/wav")}, data=data)
