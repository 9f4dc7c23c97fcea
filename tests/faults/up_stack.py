"""`voicechain up` as a new user runs it, for fault tests: the real command, no VOICECHAIN_REDIS_URL (so it
starts its embedded Redis), SQLite, in a network namespace of its own that has only a loopback interface.

The namespace stands for a fresh machine: nothing listens on 127.0.0.1:6379 there (this machine's own
Redis does, outside), so a process that fell back to that default, as the sweeper did when the Celery app
was configured at import, fails instead of quietly publishing where no worker listens. The test reaches
the API, the embedded Redis and its webhook sink from threads that entered the namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
import redis

from tests.faults.harness import API_KEY, WEBHOOK_SECRET, DatabaseAudit, WebhookSink, submit
from tests.services import free_port
from workers import liveness

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def namespaces_reason() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "a network namespace needs root"
    return None


def _enter(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


class UpStack(DatabaseAudit):
    def __init__(self, tmp: Path, workers: int = 2) -> None:
        self.tmp, self.worker_count = tmp, workers
        self.netns = f"vcup{uuid.uuid4().hex[:8]}"
        self.data_dir = (tmp / "data").resolve()
        self.database_url = f"sqlite:///{self.data_dir / 'voicechain.db'}"
        self.log_path = tmp / "up.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._threads: list[ThreadPoolExecutor] = []
        self.redis_url = ""

    # --- inside the namespace ----------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(1, initializer=_enter, initargs=(f"/var/run/netns/{self.netns}",))
        self._threads.append(pool)
        return pool

    def inside(self, fn: Any, *args: Any) -> Any:
        return self._client_thread.submit(fn, *args).result()

    def start(self) -> UpStack:
        reason = namespaces_reason()
        if reason:
            pytest.skip(f"`voicechain up` fault test needs a network namespace: {reason}")
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True, timeout=10)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True, timeout=10)
        self._client_thread, self._probe_thread = self._executor(), self._executor()
        self.sink = self.inside(WebhookSink)
        self.port = self.inside(free_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
            "VOICECHAIN_API_KEYS": API_KEY,
            "VOICECHAIN_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "VOICECHAIN_LLM_MAX_TOKENS": "12",
            "VOICECHAIN_TASK_SOFT_TIME_LIMIT_S": "30",
            "VOICECHAIN_TASK_TIME_LIMIT_S": "40",
            "VOICECHAIN_STAGE_MAX_RETRIES": "8",
            "PYTHONUNBUFFERED": "1",
        }
        ports = [str(self.inside(free_port)) for _ in range(2)]
        command = ["ip", "netns", "exec", self.netns, sys.executable, "-m", "api.cli", "up",
                   "--data-dir", str(self.data_dir), "--port", str(self.port), "--flower-port", ports[0],
                   "--realtime-port", ports[1], "--workers", str(self.worker_count)]  # fmt: skip
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.inside(self._wait_ready)
        self.wait_workers_ready()
        return self

    def _wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"voicechain up exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    found = re.search(r"redis://127\.0\.0\.1:\d+/0", self.log())
                    if found:
                        self.redis_url = found.group(0)
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"voicechain up did not become ready:\n{self.log()[-3000:]}")

    def wait_workers_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log().count(" ready.") >= self.worker_count:
                return
            time.sleep(0.3)
        raise RuntimeError(f"workers did not become ready:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for child in self._celery_workers():  # never leave a worker behind, whatever `up` did
            with_suppress(lambda c=child: os.killpg(c.pid, signal.SIGKILL))
        if getattr(self, "sink", None) is not None:
            self.sink.close()
        for pool in self._threads:
            pool.shutdown(wait=False, cancel_futures=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=10)

    # --- the kill-load protocol (tests/faults/kill_load.py) -----------------------------------------

    def submit_turn(self, audio: bytes, callback: bool) -> httpx.Response:
        def post() -> httpx.Response:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=headers, timeout=30) as c:
                return submit(c, audio, self.sink.url if callback else None)

        return self.inside(post)

    def live_turn(self, stage: str) -> tuple[str, str] | None:
        def probe() -> tuple[str, str] | None:
            client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
            for turn_id, node in self.running_turns(stage):
                if client.exists(liveness.key(turn_id, stage)):
                    return turn_id, node
            return None

        return self._probe_thread.submit(probe).result()

    def _celery_workers(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            try:
                if "celery" in " ".join(child.cmdline()) and "worker" in child.cmdline():
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    def kill(self, worker: str, kind: str) -> bool:
        """SIGKILL the worker whose node name is `worker` (`worker1@host`): all of it, or its pool child."""
        prefix = worker.split("@", 1)[0] + "@"
        for process in self._celery_workers():
            try:
                cmdline = process.cmdline()
                if not any(arg.startswith(prefix) for arg in cmdline):
                    continue
                if kind == "worker":
                    os.killpg(process.pid, signal.SIGKILL)
                    return True
                children = process.children()
                for child in children:
                    child.kill()
                return bool(children)
            except (psutil.NoSuchProcess, ProcessLookupError):
                return False
        return False


def with_suppress(fn: Any) -> None:
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess, PermissionError):
        fn()
