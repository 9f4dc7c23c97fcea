"""A whole chained stack as real processes that a test can hurt: its own Redis (stoppable, flushable), an
API, one Celery worker per stage queue plus a webhook worker, the sweeper, and a webhook sink that counts
what it receives. Timings are shortened (stall detection in seconds, small LLM replies) so a fault test
runs in a couple of minutes on two cores.
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
from sqlalchemy import func, select

from pipelines.settings import STAGES, WEBHOOK_QUEUE
from pipelines.storage.database import session_scope
from pipelines.storage.models import Artifact, StageRun, Turn, TurnStatus, WebhookDelivery
from tests.services import (
    Processes,
    RedisServer,
    api_command,
    free_port,
    wait_http_ok,
    worker_command,
)

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


@dataclass
class FaultStack:
    tmp: Path
    database_url: str
    redis: RedisServer = field(init=False)
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

    def start(self) -> FaultStack:
        self.redis = RedisServer(port=free_port(), data_dir=self.tmp / "redis")
        self.redis.start()
        self.processes = Processes(log_dir=self.tmp)
        self.sink = WebhookSink()
        env, port = self.env(), free_port()
        self.processes.start("api", api_command(port), env)
        for queue in (*STAGES, WEBHOOK_QUEUE):
            self.start_worker(queue)
        sweeper = [sys.executable, "-m", "api.cli", "sweeper"]
        self.processes.start("sweeper", sweeper, env)
        threading.Thread(target=self._supervise, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{port}"
        wait_http_ok(self.base_url + "/readyz", timeout_s=90)
        return self

    def start_worker(self, queue: str) -> None:
        env = self.env() | {"VOICECHAIN_WORKER_QUEUES": queue}
        self.workers[queue] = self.processes.start(
            f"worker-{queue}", worker_command(queue, f"{queue}@fault"), env
        )

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

    def restart_redis(self, *, flush: bool) -> None:
        """Stop Redis (after FLUSHALL if asked: every queued message is gone), start it on the same port."""
        if flush:
            subprocess.run([redis_cli(), "-p", str(self.redis.port), "FLUSHALL"], check=False,
                           capture_output=True, timeout=10)  # fmt: skip
        self.redis.stop()
        self.redis.start()

    # --- what the database says ---------------------------------------------------------------------

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


def redis_cli() -> str:
    from api.cli.embedded_redis import redis_server_binary

    binary = Path(redis_server_binary())
    cli = binary.with_name("redis-cli")
    return str(cli) if cli.exists() else "redis-cli"


def submit(client: httpx.Client, audio: bytes, callback_url: str | None) -> httpx.Response:
    data = {"callback_url": callback_url} if callback_url else {}
    return client.post("/v1/jobs", files={"file": ("q.wav", audio, "audio/wav")}, data=data)
