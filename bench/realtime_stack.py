"""The processes the realtime benchmarks measure: a pool (`voicechain realtime`, local models) and, when
asked, Redis and the API in front of it (`WS /v1/realtime`, `POST /v1/realtime/calls`).

With `isolated`, everything runs inside a network namespace that has only `lo` (plus 127.0.0.2, since
aioice gathers no 127.0.0.1 candidates), and so must the client: `run` / `arun` execute there. WebRTC
needs that (root, `ip`); nothing ever leaves the namespace.

The pool logs `webrtc-media` lines (see `workers.realtime.webrtc_call.SpeechTrack`): `media_times()`
reads them back, keyed by response id, in the host-wide monotonic clock the client also uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from api.cli.embedded_redis import free_port, redis_server_binary
from pipelines.storage.migrate import upgrade

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
#: the pool, with its WebRTC track's timestamps logged (the `webrtc-media` debug lines)
POOL_MAIN = (
    "import logging; logging.getLogger('workers.realtime.webrtc_call').setLevel(logging.DEBUG);"
    "from api.cli import app; app()"
)


class Stack:
    """Redis (with the API), the pool and the API, started in that order and stopped in reverse."""

    def __init__(
        self,
        root: Path,
        key: str,
        *,
        processes: int = 1,
        max_sessions: int = 64,
        with_api: bool = False,
        isolated: bool = False,
    ) -> None:
        self.root, self.key, self.processes, self.max_sessions = root, key, processes, max_sessions
        self.with_api = with_api
        self.ns: Any = None
        if isolated:
            from tests.multihost.netns import Namespace, can_make_namespaces

            reason = can_make_namespaces()
            if reason:
                sys.exit(f"WebRTC needs a loopback-only network namespace: {reason}")
            self.ns = Namespace()
        # a namespace of our own has every port free
        ports = (6379, 8001, 8000) if isolated else (free_port(), free_port(), free_port())
        self.redis_port, self.pool_port, self.api_port = ports
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def pool_ws(self) -> str:
        return f"ws://127.0.0.1:{self.pool_port}/v1"

    @property
    def api_http(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/v1"

    def pid(self, name: str) -> int:
        return self.procs[name].pid  # `ip netns exec` execs the command: the same process

    def run(self, fn: Callable[[], T]) -> T:
        """`fn()` where the stack's sockets are (inside the namespace when isolated)."""
        return self.ns.run(fn) if self.ns is not None else fn()

    def arun(self, coro_fn: Callable[[], Any]) -> Any:
        import asyncio

        return self.ns.arun(coro_fn) if self.ns is not None else asyncio.run(coro_fn())

    def _start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        prefix = self.ns.exec_prefix() if self.ns is not None else []
        log = (self.root / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [*prefix, *command], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def start(self) -> None:
        database = f"sqlite:///{self.root / 'bench.db'}"
        upgrade(database)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
            "VOICECHAIN_DATA_DIR": str(self.root), "VOICECHAIN_DATABASE_URL": database,
            "VOICECHAIN_API_KEYS": self.key, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        if self.with_api:
            env["VOICECHAIN_REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
            self._start("redis", [redis_server_binary(), "--bind", "127.0.0.1", "--port",
                                  str(self.redis_port), "--save", "", "--appendonly", "no",
                                  "--dir", str(self.root)], env)  # fmt: skip
        pool = ["realtime", "--processes", str(self.processes), "--port", str(self.pool_port)]
        self._start("pool", [sys.executable, "-c", POOL_MAIN, *pool, "--max-sessions",
                             str(self.max_sessions)], env)  # fmt: skip
        if self.with_api:
            self._start("api", [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
                                "--host", "127.0.0.1", "--port", str(self.api_port),
                                "--log-level", "warning"], env)  # fmt: skip
        self._wait(f"http://127.0.0.1:{self.pool_port}/healthz", "pool", 180)
        if self.with_api:
            self._wait(f"http://127.0.0.1:{self.api_port}/healthz", "api", 120)
            self._wait_registered()

    def _wait(self, url: str, name: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.run(lambda: _ok(url)):
            if time.monotonic() > deadline or self.procs[name].poll() is not None:
                log = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} did not start:\n{log}")
            time.sleep(0.3)

    def _wait_registered(self) -> None:
        """Every pool process is in the Redis registry (the API routes by it)."""
        import redis

        client = redis.Redis(port=self.redis_port)

        def registered() -> int:
            try:
                return len(client.keys("voicechain:realtime:worker:*"))
            except redis.RedisError:
                return 0

        deadline = time.monotonic() + 30
        while self.run(registered) < self.processes:
            if time.monotonic() > deadline:
                raise RuntimeError("the pool processes did not register in Redis")
            time.sleep(0.2)
        self.run(client.close)

    def media_times(self) -> dict[str, dict[str, float]]:
        """response id -> {fed, out, audible}: when its audio reached the call, and its first frame and
        first audible frame went to the encoder (monotonic seconds)."""
        out = {}
        for line in (self.root / "pool.log").read_text(errors="replace").splitlines():
            _, sep, data = line.partition("webrtc-media ")
            if sep:
                with_times = json.loads(data)
                out.setdefault(with_times["response"], with_times)
        return out

    def print_logs(self, tail: int = 2000) -> None:
        """The end of each process's log (a failed run's temporary directory is about to go)."""
        for name in self.procs:
            text = (self.root / f"{name}.log").read_text(errors="replace")
            print(f"--- {name}.log (end) ---\n{text[-tail:]}", file=sys.stderr)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(list(self.procs.values())):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.ns is not None:
            self.ns.destroy()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
