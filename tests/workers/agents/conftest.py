"""Stacks for the agent tests: API + one worker serving every stage queue and the webhook queue.

`agent_stack` has webhooks on; `review_stack` also holds every reply for approval. Each stack has its
own Redis database, so one stack's worker never takes the other's jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipelines.settings import STAGES, WEBHOOK_QUEUE, Settings
from tests.conftest import API_KEY, OTHER_KEY, Stack, settings_env
from tests.services import Processes, RedisServer, api_command, free_port, wait_http_ok, worker_command

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"


def _start(settings: Settings, processes: Processes, extra_env: dict[str, str]) -> Stack:
    env = settings_env(settings) | {"VOICECHAIN_WEBHOOK_SECRET": WEBHOOK_SECRET} | extra_env
    port = free_port()
    processes.start("api", api_command(port), env)
    processes.start("worker", worker_command(",".join((*STAGES, WEBHOOK_QUEUE)), f"w{port}@test"), env)
    base_url = f"http://127.0.0.1:{port}"
    wait_http_ok(base_url + "/readyz")
    return Stack(settings, processes, base_url)


def _stack(
    tmp_path_factory, redis_server: RedisServer, sqlite_url: str, db: int, **env: str
) -> Iterator[Stack]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"), database_url=sqlite_url,
        redis_url=f"redis://127.0.0.1:{redis_server.port}/{db}", api_keys=[API_KEY, OTHER_KEY],
        stall_after_s=5, sweep_interval_s=1, webhook_secret=WEBHOOK_SECRET,
    )  # fmt: skip
    processes = Processes(log_dir=tmp_path_factory.mktemp("logs"))
    try:
        yield _start(settings, processes, env)
    finally:
        processes.stop_all()


@pytest.fixture(scope="session")
def agent_stack(tmp_path_factory, redis_server: RedisServer, sqlite_url: str) -> Iterator[Stack]:
    yield from _stack(tmp_path_factory, redis_server, sqlite_url, 2)


@pytest.fixture(scope="session")
def review_stack(tmp_path_factory, redis_server: RedisServer, sqlite_url: str) -> Iterator[Stack]:
    yield from _stack(tmp_path_factory, redis_server, sqlite_url, 3, VOICECHAIN_REVIEW_AGENTS="*")


class Receiver:
    """A real local HTTP server recording webhook POSTs; answers 500 to the first `fail_first` ones."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.calls = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.calls += 1
                    failing = receiver.calls <= receiver.fail_first
                    if not failing:
                        receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(fail_first=1)
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()
