"""Session-wide fixtures: real Redis, real databases, real VoiceChain processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.providers.local_llm import gguf_path
from pipelines.settings import QUEUES, Settings
from pipelines.storage.migrate import upgrade
from tests.services import (
    LLAMA_SERVER_KEY,
    Processes,
    RedisServer,
    api_command,
    free_port,
    postgres_available,
    scratch_postgres_database,
    unavailable,
    wait_http_ok,
    worker_command,
)

API_KEY = "vc_test_key_0123456789"
OTHER_KEY = "vc_test_key_other_9876543210"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), data_dir=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not postgres_available():
        unavailable("PostgreSQL is not listening on 127.0.0.1:5432")
    with scratch_postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'voicechain.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Storage tests run on both backends."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def stack_settings(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, sqlite_url: str
) -> Settings:
    """Settings shared by the test's API and worker processes (SQLite: the embedded default)."""
    data_dir = tmp_path_factory.mktemp("data")
    return Settings(
        data_dir=data_dir, database_url=sqlite_url, redis_url=redis_server.url,
        api_keys=[API_KEY, OTHER_KEY], policy_block_patterns=[r"\bforbidden-topic\b"],
        stall_after_s=5, sweep_interval_s=1,
    )  # fmt: skip


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")}
    env.update({
        "VOICECHAIN_DATA_DIR": str(settings.data_dir),
        "VOICECHAIN_DATABASE_URL": settings.resolved_database_url,
        "VOICECHAIN_REDIS_URL": settings.redis_url or "",
        "VOICECHAIN_API_KEYS": ",".join(settings.api_keys),
        "VOICECHAIN_POLICY_BLOCK_PATTERNS": ",".join(settings.policy_block_patterns),
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    return env


class Stack:
    def __init__(self, settings: Settings, processes: Processes, base_url: str) -> None:
        self.settings, self.processes, self.base_url = settings, processes, base_url

    def client(self, key: str = API_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="session")
def stack(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The API and one Celery worker serving all four queues, as separate real processes."""
    processes = Processes(log_dir=tmp_path_factory.mktemp("logs"))
    env = settings_env(stack_settings)
    port = free_port()
    processes.start("api", api_command(port), env)
    processes.start("worker", worker_command(",".join(QUEUES), "worker1@test"), env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(base_url + "/readyz")
        yield Stack(stack_settings, processes, base_url)
    finally:
        processes.stop_all()


#: `python -m llama_cpp.server`, with the AMX weight repacking off (pipelines/providers/llama_loader.py)
LLAMA_SERVER_MAIN = (
    "import runpy; from pipelines.providers import llama_loader;"
    "llama_loader.disable_repacking_for_process();"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with the bundled GGUF: a real local stand-in for OpenAI."""
    try:
        import llama_cpp.server.app  # noqa: F401  (the [server] extra's dependencies)
    except ImportError as exc:
        unavailable(f"llama-cpp-python[server] is not installed: {exc}")
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", LLAMA_SERVER_MAIN, "--model", str(gguf_path()), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--api_key", LLAMA_SERVER_KEY],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/docs", timeout_s=60)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory):
    """Synthesize spoken questions with the bundled piper voice (cached per text)."""
    from tests.speech import Speaker

    return Speaker(tmp_path_factory.mktemp("speech"))


class RealtimePool:
    """`voicechain realtime --processes N` next to the stack, registered in the stack's Redis."""

    def __init__(self, port: int, workers: list[str]) -> None:
        self.port, self.workers = port, workers

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"


@pytest.fixture(scope="session")
def realtime_pool(stack: Stack) -> Iterator[RealtimePool]:
    """Two realtime pool processes with the local models, as `voicechain up` runs them (the API's
    `WS /v1/realtime` routes to them through the Redis registry)."""
    import redis

    port = free_port()
    command = [sys.executable, "-m", "api.cli", "realtime", "--processes", "2", "--port", str(port)]
    process = stack.processes.start("realtime", command, settings_env(stack.settings))
    client = redis.Redis.from_url(stack.settings.redis_url or "")
    deadline = time.monotonic() + 300  # each process loads the models; slow on a loaded machine
    while True:
        keys = sorted(k.decode() for k in client.scan_iter("voicechain:realtime:worker:*"))
        if len(keys) == 2:
            break
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("realtime pool did not register:\n" + stack.processes.log("realtime")[-3000:])
        time.sleep(0.2)
    try:
        yield RealtimePool(port, [k.split(":", 3)[3] for k in keys])
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


__all__ = ["API_KEY", "OTHER_KEY", "Path"]
