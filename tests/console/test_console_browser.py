"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright; never
`playwright install`). Screenshots go to $VOICECHAIN_ARTIFACTS_DIR (default: the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import API_KEY, Stack
from tests.services import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.models]

CHROMIUM = os.environ.get("VOICECHAIN_CHROMIUM", "/usr/bin/chromium")
NO_NETWORK_FLAGS = [
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-domain-reliability", "--metrics-recording-only",
]  # fmt: skip


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("VOICECHAIN_ARTIFACTS_DIR")
    directory = Path(configured) if configured else tmp_path_factory.mktemp("artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def spoken_question(speech, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A question for the fake microphone: 48 kHz mono PCM16 (what Chromium's file capture reads best),
    then 15 s of silence: Chromium loops the file, and the next repetition would interrupt the reply."""
    import numpy as np
    import soundfile
    import soxr

    samples, rate = soundfile.read(
        speech.wav("What is the capital of France?", silence_s=0.5), dtype="float32"
    )
    resampled = soxr.resample(samples, rate, 48_000)
    padded = np.concatenate([resampled, np.zeros(48_000 * 15, dtype=np.float32)])
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    soundfile.write(path, padded, 48_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(spoken_question: Path) -> Iterator[object]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright (Python) is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={spoken_question}", *NO_NETWORK_FLAGS,
            ],
        )  # fmt: skip
        try:
            yield chromium
        finally:
            chromium.close()


def test_jobs_view_uploads_and_shows_timeline_verdict_and_audio(
    stack: Stack, browser, speech, artifacts: Path
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(stack.base_url + "/#jobs")
    page.fill("#api-key", API_KEY)
    page.click("#key-form button[type=submit]")
    page.set_input_files("#upload-file", str(speech.wav("What is the capital of France?")))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-status[data-job-id]", timeout=30_000)
    job_id = page.get_attribute("#upload-status", "data-job-id")
    card = f"article.job[data-job-id='{job_id}']"
    page.wait_for_selector(f"{card}[data-status=succeeded]", timeout=180_000)
    page.wait_for_selector(f"{card} audio[src^='blob:']", timeout=30_000)
    bars = page.eval_on_selector_all(f"{card} .bar", "bars => bars.map(b => b.dataset.stage)")
    assert bars == ["stt", "agent", "policy", "tts"]
    widths = page.eval_on_selector_all(
        f"{card} .bar", "bars => bars.map(b => b.getBoundingClientRect().width)"
    )
    assert all(w > 0 for w in widths)
    verdict = page.get_attribute(f"{card} .policy", "data-verdict")
    assert verdict in ("allowed", "redacted")
    assert "capital" in page.inner_text(f"{card} .text").lower()
    # The answer plays: duration known, and the playhead moves.
    duration = page.eval_on_selector(
        f"{card} audio",
        """async audio => { await audio.play(); await new Promise(r => setTimeout(r, 800));
           return { duration: audio.duration, position: audio.currentTime }; }""",
    )
    assert duration["duration"] > 0.5 and duration["position"] > 0.2, duration
    page.screenshot(path=str(artifacts / "console-jobs.png"), full_page=True)
    assert not errors, errors


def test_live_view_without_an_open_console_says_so(stack: Stack, browser, artifacts: Path) -> None:
    """The stack keeps the console's live view closed (the default): the page must say why, not hang."""
    page = browser.new_page()
    page.goto(stack.base_url + "/")
    page.click("#live-start")
    page.wait_for_selector("#live-transcript li.error", timeout=15_000)
    assert "VOICECHAIN_CONSOLE_LIVE_OPEN" in page.inner_text("#live-transcript")
    page.screenshot(path=str(artifacts / "console-live-closed.png"), full_page=True)


@pytest.fixture(scope="module")
def live_console(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second API process with the console's live view open, and a realtime pool process, sharing the
    stack's Redis and database."""
    import sys

    from tests.conftest import settings_env
    from tests.services import Processes, api_command, free_port, wait_http_ok

    pool_port, api_port = free_port(), free_port()
    env = settings_env(stack.settings) | {
        "VOICECHAIN_CONSOLE_LIVE_OPEN": "true",
        "VOICECHAIN_CONSOLE_REALTIME_URL": f"ws://127.0.0.1:{pool_port}/v1/realtime",
        "VOICECHAIN_REALTIME_PORT": str(pool_port),
    }
    processes = Processes(log_dir=tmp_path_factory.mktemp("live-logs"))
    pool = [sys.executable, "-c", "from pipelines.settings import get_settings; "
            "from workers.realtime.server import serve; serve(get_settings(), host='127.0.0.1')"]  # fmt: skip
    processes.start("realtime", pool, env)
    processes.start("api-live", api_command(api_port), env)
    try:
        wait_http_ok(f"http://127.0.0.1:{api_port}/readyz")
        wait_http_ok(f"http://127.0.0.1:{pool_port}/healthz", timeout_s=90)
        yield f"http://127.0.0.1:{api_port}"
    except Exception:
        print(processes.log("realtime")[-4000:])
        raise
    finally:
        processes.stop_all()


def test_live_view_talks_to_the_agent(live_console: str, browser, artifacts: Path) -> None:
    """The fake microphone asks a question; the page must play a spoken reply and show both sides."""
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(live_console + "/")
    page.click("#live-start")
    try:
        page.wait_for_function(
            "() => voicechainConsole.live.stats.replyAudioMs > 1000", timeout=90_000, polling=250
        )
        page.wait_for_selector("#live-transcript li.assistant", timeout=30_000)
    finally:
        page.screenshot(path=str(artifacts / "console-live.png"), full_page=True)
    stats = page.evaluate("() => voicechainConsole.live.stats")
    page.click("#live-stop")
    heard = " ".join(stats["userTranscripts"]).lower()
    assert "capital" in heard and "france" in heard, stats
    assert stats["assistantTranscripts"] or page.inner_text("#live-transcript li.assistant"), stats
    assert stats["latenciesMs"] and stats["latenciesMs"][0] > 0, stats
    assert not stats["errors"], stats
