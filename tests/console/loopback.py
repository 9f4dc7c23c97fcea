"""A loopback-only network namespace holding a whole browser-to-pool stack, for WebRTC.

aioice (the pool's ICE) never gathers 127.0.0.1, and outside a namespace both ends would gather the
machine's other interfaces. So Redis, the API, one realtime pool process and Chromium all run inside a
namespace that has only `lo`, with 127.0.0.2/8 added to it: every ICE candidate is a loopback one and no
packet can leave. The test process reaches the stack from one thread that lives in the namespace.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from tests.conftest import API_KEY
from tests.console.conftest import POOL
from tests.multihost.netns import Namespace, can_make_namespaces
from tests.services import Processes, unavailable

T = TypeVar("T")
API = "http://127.0.0.1:8000"
POOL_PORT = 8001
CHROMIUM_LOOPBACK = "--allow-loopback-in-peer-connection"


class LoopbackStack:
    def __init__(self, tmp: Path) -> None:
        reason = can_make_namespaces()
        if reason:
            unavailable(reason)
        self.tmp = tmp
        self.ns = Namespace("vccon")
        self.processes = Processes(log_dir=tmp)

    @property
    def prefix(self) -> list[str]:
        return self.ns.exec_prefix()

    def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the thread inside the namespace (its sockets reach the stack)."""
        return self.ns.run(fn)

    def chromium(self, executable: str) -> str:
        """A launcher that starts Chromium inside the namespace (Playwright talks to it over a pipe)."""
        wrapper = self.tmp / "chromium-in-netns"
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(self.prefix)} {executable} "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)

    def start(self) -> None:
        from api.cli.embedded_redis import redis_server_binary
        from pipelines.storage.migrate import upgrade

        database = f"sqlite:///{self.tmp / 'voicechain.db'}"
        upgrade(database)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
            "VOICECHAIN_DATA_DIR": str(self.tmp), "VOICECHAIN_DATABASE_URL": database,
            "VOICECHAIN_REDIS_URL": "redis://127.0.0.1:6379/0", "VOICECHAIN_API_KEYS": API_KEY,
            "VOICECHAIN_CONSOLE_LIVE_OPEN": "true", "VOICECHAIN_REALTIME_PORT": str(POOL_PORT),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        redis = [redis_server_binary(), "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                 "--appendonly", "no", "--dir", str(self.tmp)]  # fmt: skip
        self.processes.start("redis", [*self.prefix, *redis], env)
        self.processes.start("realtime", [*self.prefix, *POOL], env)
        api = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
               "--port", "8000", "--log-level", "warning"]  # fmt: skip
        self.processes.start("api", [*self.prefix, *api], env)
        self.wait_ok(f"{API}/readyz", 60)
        self.wait_ok(f"http://127.0.0.1:{POOL_PORT}/healthz", 180)

    def wait_ok(self, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.run(lambda: httpx.get(url, timeout=1).status_code) == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        log = self.processes.log("realtime")[-3000:]
        raise RuntimeError(f"{url} did not answer in the namespace:\n{log}")

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.run(lambda: httpx.post(API + path, timeout=10, **kwargs))

    def destroy(self) -> None:
        self.processes.stop_all()
        self.ns.destroy()
