"""Browser fixtures: Debian's Chromium driven by Playwright (never `playwright install`), a realtime pool
process with the real models next to an API process, and the official JS SDK's page.

The SDK test page is not part of the product, so the API does not serve it: Playwright answers the
page's requests under `/__sdk_test__/` (the page, the SDK's UMD bundle from `js/node_modules`) and
`/__test_backend__/client_secret` (the app backend a real deployment has: it holds the API key and mints
an `ek_` secret through `POST /v1/realtime/client_secrets`) on the API's own origin, so the page's
`fetch('/v1/realtime/calls')` is same-origin, as it is for an app served behind the API.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import API_KEY, Stack, settings_env
from tests.services import Processes, api_command, free_port, unavailable, wait_http_ok

CHROMIUM = os.environ.get("VOICECHAIN_CHROMIUM", "/usr/bin/chromium")
JS_DIR = Path(__file__).resolve().parent / "js"
SDK_BUNDLE = JS_DIR / "node_modules/@openai/agents-realtime/dist/bundle/openai-realtime-agents.umd.js"
NO_NETWORK_FLAGS = [
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-domain-reliability", "--metrics-recording-only",
]  # fmt: skip
# Playwright serves the SDK page (see the module doc), so the page has no IP address of its own and
# Chromium's Local Network Access checks treat it as a public site reaching into loopback.
LNA_OFF = "--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets"
POOL = [sys.executable, "-c", "from pipelines.settings import get_settings; "
        "from workers.realtime.server import serve; serve(get_settings(), host='127.0.0.1')"]  # fmt: skip


def chromium_args(mic: Path, *extra: str) -> list[str]:
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}", LNA_OFF, *NO_NETWORK_FLAGS, *extra,
    ]  # fmt: skip


def need_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright (Python) is not installed")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("VOICECHAIN_ARTIFACTS_DIR")
    directory = Path(configured) if configured else tmp_path_factory.mktemp("artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class LiveStack:
    """An API process with the console's live view open, and one realtime pool process."""

    api_url: str
    pool_port: int
    processes: Processes

    @property
    def pool_ws(self) -> str:
        return f"ws://127.0.0.1:{self.pool_port}/v1/realtime?model=voicechain"


@pytest.fixture(scope="session")
def live_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """Shares the stack's Redis and database, so secrets minted by the API are seen by the pool."""
    pool_port, api_port = free_port(), free_port()
    env = settings_env(stack.settings) | {
        "VOICECHAIN_CONSOLE_LIVE_OPEN": "true",
        "VOICECHAIN_CONSOLE_REALTIME_URL": f"ws://127.0.0.1:{pool_port}/v1/realtime",
        "VOICECHAIN_REALTIME_PORT": str(pool_port),
    }
    processes = Processes(log_dir=tmp_path_factory.mktemp("live-logs"))
    processes.start("realtime", POOL, env)
    processes.start("api-live", api_command(api_port), env)
    try:
        wait_http_ok(f"http://127.0.0.1:{api_port}/readyz")
        wait_http_ok(f"http://127.0.0.1:{pool_port}/healthz", timeout_s=120)
        yield LiveStack(f"http://127.0.0.1:{api_port}", pool_port, processes)
    except Exception:
        print(processes.log("realtime")[-4000:])
        raise
    finally:
        processes.stop_all()


@pytest.fixture(scope="session")
def review_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API and a worker that hold every reply for approval (`VOICECHAIN_REVIEW_AGENTS=*`), on their
    own Redis database so the main stack's worker never takes their jobs."""
    from pipelines.settings import QUEUES
    from tests.services import worker_command

    settings = stack.settings.model_copy(
        update={"redis_url": stack.settings.redis_url.rsplit("/", 1)[0] + "/6"}
    )
    env = settings_env(settings) | {"VOICECHAIN_REVIEW_AGENTS": "*"}
    processes = Processes(log_dir=tmp_path_factory.mktemp("review-logs"))
    port = free_port()
    processes.start("api", api_command(port), env)
    processes.start("worker", worker_command(",".join(QUEUES), f"review{port}@test"), env)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz")
        yield Stack(settings, processes, f"http://127.0.0.1:{port}")
    finally:
        processes.stop_all()


def mint_secret(api_url: str, client: Callable[..., httpx.Response] = httpx.post) -> tuple[int, dict]:
    """What an app's backend does for its page: trade the API key for a single-use `ek_` secret."""
    response = client(
        api_url + "/v1/realtime/client_secrets",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"expires_after": {"anchor": "created_at", "seconds": 120}},
        timeout=10,
    )
    return response.status_code, response.json()


def serve_sdk_page(page, mint: Callable[[], tuple[int, dict]]) -> None:
    """Answer the SDK page's own requests on whatever origin the page is opened at (see the module doc)."""
    if not SDK_BUNDLE.exists():
        unavailable(f"the JS SDK is not installed: run `npm ci` in {JS_DIR}")
    script = "text/javascript"
    files = {"index.html": "text/html", "sdk-page.js": script, "scripted-mic.js": script}

    def page_file(route) -> None:
        name = urlsplit(route.request.url).path.rsplit("/", 1)[-1]
        if name == SDK_BUNDLE.name:
            route.fulfill(path=str(SDK_BUNDLE), content_type="text/javascript")
        elif name in files:
            route.fulfill(path=str(JS_DIR / name), content_type=files[name])
        else:
            route.fulfill(status=404, body="not part of the test page")

    def secret(route) -> None:
        status, body = mint()
        route.fulfill(status=status, json=body)

    page.route("**/__sdk_test__/**", page_file)
    page.route("**/__test_backend__/client_secret", secret)
