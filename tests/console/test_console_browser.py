"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright; never
`playwright install`). Screenshots go to $VOICECHAIN_ARTIFACTS_DIR (default: the test's tmp dir)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import API_KEY, Stack
from tests.console.conftest import CHROMIUM, LiveStack, chromium_args, need_chromium
from tests.console.mic import piper_question

pytestmark = [pytest.mark.integration, pytest.mark.models]


@pytest.fixture(scope="module")
def spoken_question(speech, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return piper_question(speech, tmp_path_factory.mktemp("mic"))


@pytest.fixture(scope="module")
def browser(spoken_question: Path) -> Iterator[object]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(spoken_question)
        )
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


def _held_job(page, stack: Stack, speech, question: str) -> str:
    page.goto(stack.base_url + "/#jobs")
    page.fill("#api-key", API_KEY)
    page.click("#key-form button[type=submit]")
    page.set_input_files("#upload-file", str(speech.wav(question)))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-status[data-job-id]", timeout=30_000)
    job_id = page.get_attribute("#upload-status", "data-job-id")
    # no Refresh button: the card changes as the job's event stream reports its stages
    page.wait_for_selector(
        f"article.job[data-job-id='{job_id}'][data-status=awaiting_approval]", timeout=180_000
    )
    return job_id


def test_jobs_view_approves_an_edited_reply_live(
    review_stack: Stack, browser, speech, artifacts: Path
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    job_id = _held_job(page, review_stack, speech, "What is the capital of France?")
    card = f"article.job[data-job-id='{job_id}']"
    assert page.input_value(f"{card} .review textarea").strip(), "the proposed reply is shown for editing"
    page.screenshot(path=str(artifacts / "console-review.png"), full_page=True)
    page.fill(f"{card} .review textarea", "Paris is the capital of France.")
    assert page.inner_text(f"{card} button.approve") == "Approve edited"
    page.click(f"{card} button.approve")
    page.wait_for_selector(f"{card}[data-status=succeeded]", timeout=120_000)
    page.wait_for_selector(f"{card} audio[src^='blob:']", timeout=30_000)
    assert "Paris is the capital of France." in page.inner_text(card)
    assert page.get_attribute(f"{card} .policy", "data-verdict") == "approved"
    with review_stack.client() as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["spoken_text"] == "Paris is the capital of France.", job
    assert not errors, errors


def test_jobs_view_rejects_a_reply(review_stack: Stack, browser, speech) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    job_id = _held_job(page, review_stack, speech, "Tell me something about the ocean.")
    card = f"article.job[data-job-id='{job_id}']"
    page.fill(f"{card} .review input.reason", "off brand")
    page.click(f"{card} button.reject")
    page.wait_for_selector(f"{card}[data-status=rejected]", timeout=60_000)
    assert "off brand" in page.inner_text(card)
    assert page.locator(f"{card} audio").count() == 0


def test_live_view_without_an_open_console_says_so(stack: Stack, browser, artifacts: Path) -> None:
    """The stack keeps the console's live view closed (the default): the page must say why, not hang."""
    page = browser.new_page()
    page.goto(stack.base_url + "/")
    page.click("#live-start")
    page.wait_for_selector("#live-transcript li.error", timeout=15_000)
    assert "VOICECHAIN_CONSOLE_LIVE_OPEN" in page.inner_text("#live-transcript")
    page.screenshot(path=str(artifacts / "console-live-closed.png"), full_page=True)


def test_live_view_talks_to_the_agent(live_stack: LiveStack, browser, artifacts: Path) -> None:
    """The fake microphone asks a question; the page must play a spoken reply and show both sides, and
    the latency of the turn. WebSocket here: this test runs in the root network namespace, where a
    WebRTC peer would use the machine's other interfaces (the WebRTC test runs in its own namespace)."""
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(live_stack.api_url + "/#live?transport=websocket")
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
    assert stats["transport"] == "websocket" and page.inner_text("#live-via") == "WebSocket"
    assert page.locator("#live-turns li").count() == len(stats["latenciesMs"])
    assert not stats["errors"], stats


def test_live_view_shows_a_tool_call_as_it_happens(
    live_stack: LiveStack, browser, speech, tmp_path: Path, artifacts: Path
) -> None:
    """A spoken weather request: the pool's agent calls get_weather; the transcript shows the call with
    its arguments, then its output, then the spoken answer. (Its own Chromium: one fake file per launch.)"""
    question = piper_question(speech, tmp_path, "What is the weather like in London today?")
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=chromium_args(question))
    try:
        page = chromium.new_page(viewport={"width": 1100, "height": 800})
        page.goto(live_stack.api_url + "/#live?transport=websocket")
        page.click("#live-start")
        tool = "#live-transcript li.tool.done[data-name=get_weather]"
        try:
            page.wait_for_selector(tool, timeout=120_000)
            page.wait_for_function(
                "() => voicechainConsole.live.stats.assistantTranscripts.length > 0", timeout=60_000
            )
        finally:
            page.screenshot(path=str(artifacts / "console-live-tool.png"), full_page=True)
        text = page.inner_text(tool)
        stats = page.evaluate("() => voicechainConsole.live.stats")
        page.click("#live-stop")
    finally:
        chromium.close()
    assert "get_weather(" in text and "→" in text and "degrees" in text, text
    assert [c["name"] for c in stats["toolCalls"]] == ["get_weather"], stats
    assert "london" in stats["toolCalls"][0]["arguments"].lower(), stats
    assert "london" in stats["assistantTranscripts"][-1].lower(), stats
    assert not stats["errors"], stats
