"""The official `@openai/agents-realtime` SDK in Chromium over its WebSocket transport
(`OpenAIRealtimeWebSocket`), pointed at the realtime pool's port, with an `ek_` secret the page's
backend minted through the API. The same checks run over WebRTC in `test_sdk_webrtc.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console import sdk_checks
from tests.console.conftest import CHROMIUM, LiveStack, chromium_args, mint_secret, need_chromium
from tests.console.mic import Script, script

pytestmark = [pytest.mark.integration, pytest.mark.models]


@pytest.fixture(scope="module")
def mic(tmp_path_factory: pytest.TempPathFactory) -> Script:
    return script(tmp_path_factory.mktemp("mic"), **sdk_checks.QUESTIONS)


@pytest.fixture(scope="module")
def browser(mic: Script) -> Iterator[Any]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args(mic.path))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def session(
    live_stack: LiveStack, browser: Any, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    def open_(**options: Any) -> Any:
        page = sdk_checks.open_session(
            browser, live_stack.api_url, lambda: mint_secret(live_stack.api_url), "websocket",
            live_stack.pool_ws, **options,
        )  # fmt: skip
        pages.append(page)
        return page

    pages: list[Any] = []
    yield open_
    for page in pages:
        (artifacts / f"{request.node.name}.events.txt").write_text(
            "\n".join(map(str, sdk_checks.state(page)["serverEvents"]))
        )
        page.evaluate("() => harness.close()")
        page.close()


def test_spoken_turn_is_answered_with_audio(session: Any, mic: Script) -> None:
    sdk_checks.check_spoken_turn(session(), mic, "websocket")


def test_spoken_request_calls_a_tool(session: Any, mic: Script) -> None:
    sdk_checks.check_tool_call(session(), mic, "websocket")


def test_barge_in_cancels_the_reply(session: Any, mic: Script) -> None:
    sdk_checks.check_barge_in(session(instructions=sdk_checks.STORY_INSTRUCTIONS), mic, "websocket")
