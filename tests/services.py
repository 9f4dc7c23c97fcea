"""Real services for the tests, started once per session: a Redis server, PostgreSQL databases, and
VoiceChain's own processes (API, Celery workers). Nothing of ours is mocked.

Where a service cannot be had (no PostgreSQL on a laptop) the tests that need it skip, but under CI
(`CI=true`) they fail instead, so a broken CI machine cannot pass by skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from api.cli.embedded_redis import free_port, redis_server_binary, wait_until_listening

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: The key the test llama.cpp server (an OpenAI-compatible chat server) requires.
LLAMA_SERVER_KEY = "llama-test-key"
PG_ADMIN_URL = os.environ.get("VOICECHAIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(reason: str) -> None:
    """Skip on a developer machine, fail in CI."""
    if IN_CI:
        pytest.fail(f"required test service unavailable in CI: {reason}")
    pytest.skip(reason)


@dataclass
class RedisServer:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.data_dir), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until_listening(self.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A fresh database for this test session, dropped afterwards; returns its URL."""
    import psycopg

    name = f"voicechain_test_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from pipelines.storage.database import get_engine, get_sessionmaker

        get_engine(url).dispose()  # close pooled connections so the database can be dropped
        get_engine.cache_clear()
        get_sessionmaker.cache_clear()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Processes:
    """Child processes started by a fixture, stopped (and their output shown on failure) at teardown."""

    log_dir: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running.append((name, process))
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.running):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_command(queues: str, name: str, concurrency: int = 1) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues,
            "-c", str(concurrency), "-E", "-n", name, "--loglevel", "INFO", "--without-gossip",
            "--without-mingle", "--without-heartbeat"]  # fmt: skip


def api_command(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]  # fmt: skip


def wait_http_ok(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s} s")


__all__ = ["free_port"]
