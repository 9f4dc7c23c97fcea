"""Provider `openai`: the pool relays sessions upstream. "OpenAI" here is a second local pool with fake
engines, so the relay is tested over real sockets without the internet, driven by the `openai` client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from pipelines.agents.examples import weather_report
from pipelines.agents.registry import load_agents
from pipelines.providers.base import ToolCall
from pipelines.realtime.agent_tools import AgentTools
from pipelines.realtime.persistence import MemorySink
from pipelines.settings import Settings
from pipelines.storage.database import session_scope
from pipelines.storage.migrate import upgrade
from pipelines.storage.turns import get_conversation
from tests.pipelines.realtime.fakes import fake_engines
from tests.workers.realtime.conftest import API_KEY, free_port, run
from tests.workers.realtime.test_server import collect_until
from workers.realtime.relay import RelayConfig
from workers.realtime.storage_sink import StorageSink

MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


def _user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _relay_to(upstream: Any, **kw: Any) -> RelayConfig:
    return RelayConfig(url=upstream.ws_base + "/realtime?model=x", api_key=API_KEY, **kw)


def test_text_turn_is_relayed_and_stored(serve_app: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    sinks: list[StorageSink] = []

    def sink_factory(principal: Any) -> StorageSink:
        sinks.append(StorageSink(url))
        return sinks[-1]

    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.session.update(session=MANUAL)  # type: ignore[arg-type]
            updated = await conn.recv()  # the relay's own update is not shown: this is the client's
            assert updated.type == "session.updated"
            assert updated.session.audio.input.turn_detection is None
            await conn._connection.send("{oops")  # type: ignore[attr-defined]
            assert (await conn.recv()).error.code == "invalid_json"  # checked here, not sent upstream
            await conn.conversation.item.create(item=_user_text("Tell me a joke."))  # type: ignore[arg-type]
            await conn.response.create()
            events = await collect_until(conn, "response.done")
            assert events[-1].response.status == "completed"
            assert events[-1].response.output[0].content[0].transcript == "Knock knock."

    upstream_engines = fake_engines(reply="Knock knock.")
    with (
        serve_app(upstream_engines) as upstream,
        serve_app(
            fake_engines(reply="never used"), relay=_relay_to(upstream), sink_factory=sink_factory
        ) as relay,
    ):
        run(main(relay.ws_base))
    assert upstream_engines.chat.seen  # type: ignore[attr-defined]  # the upstream model answered
    (sink,) = sinks
    assert sink.conversation_id is not None
    with session_scope(url) as db:
        (turn,) = get_conversation(db, sink.conversation_id, owner=sink.owner).turns
        assert turn.transcript == "Tell me a joke."
        assert turn.reply_text == "Knock knock." and turn.spoken_text == "Knock knock."


def test_barge_in_truncation_stores_what_was_heard(serve_app: Any) -> None:
    """The upstream's `conversation.item.truncated` has no text: the relay estimates the heard words."""
    sink = MemorySink()
    reply = "One two three four five six seven eight nine ten."

    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            await conn.session.update(session=MANUAL)  # type: ignore[arg-type]
            await conn.recv()
            await conn.conversation.item.create(item=_user_text("Count to ten."))  # type: ignore[arg-type]
            await conn.response.create()
            events = await collect_until(conn, "response.done")
            item_id = events[-1].response.output[0].id
            await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=400)
            truncated = await collect_until(conn, "conversation.item.truncated")
            assert truncated[-1].audio_end_ms == 400

    with (
        serve_app(fake_engines(reply=reply)) as upstream,
        serve_app(fake_engines(), relay=_relay_to(upstream), sink_factory=lambda principal: sink) as relay,
    ):
        run(main(relay.ws_base))
    assistant = next(r for r in sink.records.values() if r.kind == "assistant")
    assert assistant.data["generated"] == reply and assistant.data["truncated"] is True
    # 10 words over ~0.8 s of audio (the fake voice speaks 80 ms a word): about 4 or 5 were heard
    assert reply.startswith(assistant.text) and 3 <= len(assistant.text.split()) <= 5, assistant.text


def test_agent_tool_runs_in_the_relay(serve_app: Any) -> None:
    sink = MemorySink()
    registry = load_agents("pipelines.agents.examples:agents", default="Assistant")

    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            client_tool = {"type": "function", "name": "open_door", "parameters": {"type": "object"}}
            await conn.session.update(session={**MANUAL, "tools": [client_tool]})  # type: ignore[arg-type]
            updated = await conn.recv()
            names = [t.name for t in updated.session.tools]
            assert "open_door" in names and "get_weather" in names  # the agent's tools are added
            await conn.conversation.item.create(item=_user_text("Weather in Paris?"))  # type: ignore[arg-type]
            await conn.response.create()
            first = await collect_until(conn, "response.done")
            call = next(e for e in first if e.type == "response.function_call_arguments.done")
            assert call.name == "get_weather"
            # the relay answers the call itself; the model then goes on without the client's help
            second = await collect_until(conn, "response.done")
            output = next(
                e.item
                for e in second
                if e.type == "conversation.item.added" and e.item.type == "function_call_output"
            )
            assert output.call_id == call.call_id and output.output == weather_report("Paris")
            assert second[-1].response.status == "completed"
            assert second[-1].response.output[0].content[0].transcript == "Lovely weather."

    upstream_engines = fake_engines(reply="Lovely weather.")
    upstream_engines.chat.tool_call = ToolCall(  # type: ignore[attr-defined]
        id="call_w1", name="get_weather", arguments=json.dumps({"city": "Paris"})
    )
    with (
        serve_app(upstream_engines) as upstream,
        serve_app(
            fake_engines(),
            relay=_relay_to(upstream),
            sink_factory=lambda principal: sink,
            tools=lambda: AgentTools(registry),
        ) as relay,
    ):
        run(main(relay.ws_base))
    kinds = [r.kind for r in sink.records.values()]
    assert kinds == ["user", "function_call", "function_call_output", "assistant"]
    call = next(r for r in sink.records.values() if r.kind == "function_call")
    assert call.data["name"] == "get_weather" and call.data["call_id"] == "call_w1"
    out = next(r for r in sink.records.values() if r.kind == "function_call_output")
    assert out.text == weather_report("Paris") and out.data["call_id"] == "call_w1"
    assert sink.closed
    # the upstream model saw the tool's output as a tool message
    assert any(m.role == "tool" for m in upstream_engines.chat.seen[-1])  # type: ignore[attr-defined]


def test_handoff_switches_the_upstream_agent(serve_app: Any) -> None:
    sink = MemorySink()
    registry = load_agents("pipelines.agents.examples:agents", default="Assistant")

    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            await conn.session.update(session=MANUAL)  # type: ignore[arg-type]
            assert (await conn.recv()).type == "session.updated"
            await conn.conversation.item.create(item=_user_text("Support please."))  # type: ignore[arg-type]
            await conn.response.create()
            await collect_until(conn, "response.done")
            events = await collect_until(conn, "response.done")
            updated = next(e for e in events if e.type == "session.updated")
            assert updated.session.instructions == registry.get("Support").instructions
            assert [t.name for t in updated.session.tools] == ["get_order_status"]
            assert events[-1].response.status == "completed"

    upstream_engines = fake_engines(reply="Support here.")
    upstream_engines.chat.tool_call = ToolCall(  # type: ignore[attr-defined]
        id="call_h1", name="transfer_to_support", arguments="{}"
    )
    with (
        serve_app(upstream_engines) as upstream,
        serve_app(
            fake_engines(),
            relay=_relay_to(upstream),
            sink_factory=lambda principal: sink,
            tools=lambda: AgentTools(registry),
        ) as relay,
    ):
        run(main(relay.ws_base))
    agent = next(r for r in sink.records.values() if r.kind == "agent")
    assert agent.text == "Support" and agent.data == {"from": "Assistant", "to": "Support"}


def test_unreachable_upstream_is_an_error_and_a_clean_close(serve_app: Any) -> None:
    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            err = await conn.recv()
            assert err.type == "error" and err.error.code == "upstream_unavailable"
            closed = False
            try:
                await conn.recv()
            except Exception:
                closed = True
            assert closed

    dead = RelayConfig(url=f"ws://127.0.0.1:{free_port()}/v1/realtime?model=x", api_key="k")
    with serve_app(fake_engines(), relay=dead) as relay:
        run(main(relay.ws_base))


def test_settings_select_the_relay() -> None:
    from workers.realtime.server import build_app

    settings = Settings(
        realtime_provider="openai",
        openai_api_key="sk-test",
        realtime_openai_url="ws://up/v1/realtime?model=m",
    )
    assert settings.realtime_openai_key == "sk-test"
    assert Settings(realtime_openai_api_key="a", openai_api_key="b").realtime_openai_key == "a"
    app = build_app(settings)
    assert app.state.pool is not None
