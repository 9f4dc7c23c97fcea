"""The three things a browser app does with `@openai/agents-realtime`, checked the same way over either
transport: a spoken question answered with audio, a spoken request that calls a tool, and a barge-in.

Each check opens the SDK page, connects a `RealtimeSession` with an `ek_` secret from the page's
backend, and says spans of the fake microphone's recording (`tests.console.mic`) at the right moments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.console.conftest import serve_sdk_page
from tests.console.mic import Script

QUESTIONS = {
    "capital": "What is the capital of France?",
    "weather": "What is the weather like in Paris today?",
    "story": "Please tell me a long story about a brave little dragon.",
    "stop": "Wait, stop. What is the capital of Italy?",
}
ASSISTANT = (
    "You are a helpful voice assistant. Answer in one or two short spoken sentences, "
    "without lists or markdown."
)  # the pool's default agent's instructions: the SDK's session.update replaces the agent's own
STORY_INSTRUCTIONS = "You are a storyteller. You tell long stories of at least ten sentences."


def unexpected(errors: list[str]) -> list[str]:
    """Every server error the SDK reported: the pool serves all it sends (item retrieve too)."""
    return list(errors)


def open_session(
    browser: Any, origin: str, mint: Callable[[], tuple[int, dict]], transport: str, url: str, **options: Any
) -> Any:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log: list[str] = []
    page.on("console", lambda msg: log.append(f"{msg.type}: {msg.text}"))
    page.on("websocket", lambda ws: log.append(f"websocket {ws.url}"))
    page.page_errors, page.console_log = errors, log
    serve_sdk_page(page, mint)
    page.goto(origin + "/__sdk_test__/index.html")
    page.wait_for_function("() => window.harness !== undefined", timeout=20_000)
    try:
        options.setdefault("instructions", ASSISTANT)
        page.evaluate("o => harness.start(o)", {"transport": transport, "url": url, **options})
    except Exception as exc:
        raise AssertionError(f"the SDK did not connect: {exc}\n" + "\n".join(log)) from exc
    return page


def state(page: Any) -> dict[str, Any]:
    return page.evaluate("() => harness.state")


def types(page: Any) -> list[str]:
    return [e["type"] for e in state(page)["serverEvents"]]


def wait_for(
    page: Any,
    kind: str,
    *,
    item: str | None = None,
    status: str | None = None,
    matches: str | None = None,
    timeout_s: float = 120,
) -> dict[str, Any]:
    """Wait for a server event of type `kind` (with that item type, response status, or a transcript
    matching the regex `matches`) and return the first such event."""
    test = {"kind": kind, "item": item, "status": status, "matches": matches}
    found = """([e, t]) => e.type === t.kind && (!t.item || (e.item && e.item.type === t.item))
        && (!t.status || e.status === t.status)
        && (!t.matches || new RegExp(t.matches, "i").test(e.transcript || (e.item && e.item.output) || ""))"""
    page.wait_for_function(
        f"t => harness.state.serverEvents.some(e => ({found})([e, t]))", arg=test,
        timeout=timeout_s * 1000, polling=200,
    )  # fmt: skip
    return page.evaluate(f"t => harness.state.serverEvents.find(e => ({found})([e, t]))", test)


def say(page: Any, script: Script, name: str) -> None:
    page.evaluate("spans => harness.say(spans)", [list(script.spans[name])])


def received_audio(page: Any, transport: str) -> float:
    """Seconds (WebSocket: bytes of PCM16 24 kHz; WebRTC: the inbound track's decoded samples) of reply."""
    if transport == "webrtc":
        stats = page.evaluate("() => harness.stats()")
        return float(stats["inboundSeconds"]) if stats and stats["inboundEnergy"] > 0 else 0.0
    return state(page)["audioBytes"] / 48_000


def check_spoken_turn(page: Any, script: Script, transport: str) -> dict[str, Any]:
    say(page, script, "capital")
    wait_for(page, "response.done", status="completed")
    if transport == "webrtc":
        wait_for(page, "output_audio_buffer.stopped", timeout_s=30)
    seen = state(page)
    heard = " ".join(
        e["transcript"] for e in seen["serverEvents"]
        if e["type"] == "conversation.item.input_audio_transcription.completed"
    ).lower()  # fmt: skip
    # the question's own word: it proves the pool heard this question. Whisper tiny.en hears espeak-ng's
    # "France" as "friends" on some Opus-captured takes, which is the model's accuracy, not the transport's.
    assert "capital" in heard, heard
    said = wait_for(page, "response.output_audio_transcript.done")
    assert said["transcript"].strip(), seen["serverEvents"]
    assert received_audio(page, transport) > 0.5
    assert any(i["role"] == "assistant" and i["text"].strip() for i in seen["history"]), seen["history"]
    assert not unexpected(seen["errors"]) and not page.page_errors, (seen["errors"], page.page_errors)
    return seen


def check_tool_call(page: Any, script: Script, transport: str) -> dict[str, Any]:
    """The pool's agent calls `get_weather` (a server-side tool: the local model cannot choose tools, so
    the pool's routes do); the SDK's session sees the call, its output and the answer spoken from it.

    The pool runs the tool itself, so the call reaches the SDK as an `mcp_call` item (the GA item for
    tools the server executes) with its output, not as a `function_call` it would have to answer: the SDK,
    which has no `get_weather`, must send no "Tool get_weather not found" output and report no error. Its
    own `response.create` after the call (`automaticallyTriggerResponseForMcpToolCalls`) is the pool's
    follow-up reply, not a second one."""
    say(page, script, "weather")
    call = wait_for(page, "response.output_item.done", item="mcp_call", matches="paris")
    assert call["item"]["name"] == "get_weather", call
    wait_for(page, "response.output_audio_transcript.done", matches="paris")
    wait_for(page, "response.done", status="completed")
    page.wait_for_timeout(500)  # time for a late error or a stray tool output to show
    seen = state(page)
    kinds = [e["type"] for e in seen["serverEvents"]]
    assert "response.function_call_arguments.done" not in kinds, kinds
    sent = [e for e in seen["clientEvents"] if (e.get("item") or {}).get("type") == "function_call_output"]
    assert sent == [], sent
    assert not unexpected(seen["errors"]) and not page.page_errors, (seen["errors"], page.page_errors)
    calls = [i for i in seen["history"] if i["type"] in ("mcp_call", "function_call")]
    assert [(c["type"], c["name"]) for c in calls] == [("mcp_call", "get_weather")], seen["history"]
    replies = [e for e in seen["serverEvents"] if e["type"] == "response.output_audio_transcript.done"]
    assert len(replies) == 1, replies  # the SDK's request for the follow-up did not make a second reply
    assert received_audio(page, transport) > 0.5
    return seen


def check_barge_in(page: Any, script: Script, transport: str) -> dict[str, Any]:
    """Interrupt a long reply 1.5 s into its audio: the reply is cancelled, the played part kept."""
    say(page, script, "story")
    started = "output_audio_buffer.started" if transport == "webrtc" else "response.output_audio.delta"
    wait_for(page, started)
    page.wait_for_timeout(1500)
    say(page, script, "stop")
    wait_for(page, "response.done", status="cancelled", timeout_s=60)
    # the interruption's own words, any of them: Whisper tiny.en hears espeak-ng's "Wait, stop" in
    # several ways over Opus (a CI run timed out on "stop" alone)
    heard = "stop|wait|capital|italy"
    wait_for(page, "conversation.item.input_audio_transcription.completed", matches=heard, timeout_s=60)
    wait_for(page, "response.done", status="completed", timeout_s=90)
    seen = state(page)
    kinds = [e["type"] for e in seen["serverEvents"]]
    if transport == "webrtc":
        assert "output_audio_buffer.cleared" in kinds, kinds
    else:
        assert seen["interrupted"] >= 1, seen  # the SDK's own barge-in: truncate + cancel
    assert "conversation.item.truncated" in kinds, kinds
    return seen
