"""The OpenAI Agents SDK's realtime session, pointed at the pool with a custom `url`, works unchanged:
its session.update is accepted, a text turn comes back as audio, a tool of the SDK's agent is called
by the model, run by the SDK (a client tool, from the server's point of view) and answered, and a tool
of the pool's own agent runs in the pool without the SDK trying to run it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner

from pipelines.agents.examples import weather_report
from pipelines.agents.registry import load_agents
from pipelines.providers.base import ToolCall
from pipelines.realtime.agent_tools import AgentTools
from tests.pipelines.realtime.fakes import fake_engines
from tests.workers.realtime.conftest import API_KEY, run

calls: list[str] = []


@function_tool
def get_time(city: str) -> str:
    """The local time in a city."""
    calls.append(city)
    return f"It is noon in {city}."


async def _talk(base: str, agent: RealtimeAgent[Any], text: str, until: str) -> list[Any]:
    runner = RealtimeRunner(agent)
    session = await runner.run(
        model_config={
            "url": f"{base}/realtime?model=voicechain",
            "api_key": API_KEY,
            "initial_model_settings": {"turn_detection": None},
        }
    )
    events: list[Any] = []
    async with session:
        await session.send_message(text)

        async def collect() -> None:
            async for event in session:
                events.append(event)
                assert event.type != "error", event
                if event.type == "raw_model_event" and getattr(event.data, "type", "") == "error":
                    raise AssertionError(event.data)
                if event.type == until:
                    return

        await asyncio.wait_for(collect(), 20)
    return events


def test_sdk_session_text_turn_is_answered_with_audio(serve_app: Any) -> None:
    agent = RealtimeAgent(name="Assistant", instructions="Be brief.")
    with serve_app(fake_engines(reply="Hello from VoiceChain.")) as pool:
        events = run(_talk(pool.ws_base, agent, "Hi there.", "agent_end"))
    kinds = [e.type for e in events]
    assert "audio" in kinds and "audio_end" in kinds
    assert "history_updated" in kinds or "history_added" in kinds


def test_sdk_agent_tool_is_called_and_answered(serve_app: Any) -> None:
    calls.clear()
    agent = RealtimeAgent(name="Assistant", instructions="Be brief.", tools=[get_time])
    engines = fake_engines(reply="Noon it is.")
    engines.chat.tool_call = ToolCall(  # type: ignore[attr-defined]
        id="call_t1", name="get_time", arguments=json.dumps({"city": "Oslo"})
    )
    with serve_app(engines) as pool:
        events = run(_talk(pool.ws_base, agent, "What time is it in Oslo?", "audio_end"))
    assert calls == ["Oslo"]
    end = next(e for e in events if e.type == "tool_end")
    assert end.output == "It is noon in Oslo."
    # the SDK sent the output back and asked for a response, which was spoken; the model saw the output
    assert any(m.role == "tool" for m in engines.chat.seen[-1])  # type: ignore[attr-defined]


def test_the_pools_own_agent_tool_runs_in_the_pool_and_the_sdk_answers_nothing(serve_app: Any) -> None:
    """An `mcp_call` item is the server's: the SDK, which has no `get_weather`, sends no "not found"
    output and reports no error (`_talk` fails on any error); the pool speaks the tool's answer."""
    agent = RealtimeAgent(name="Assistant", instructions="Be brief.")
    registry = load_agents("pipelines.agents.examples:agents", default="Assistant")
    engines = fake_engines(reply="never used")
    with serve_app(engines, tools=lambda: AgentTools(registry)) as pool:
        events = run(_talk(pool.ws_base, agent, "What's the weather in Paris?", "audio_end"))
    server = [
        e.data.data for e in events if e.type == "raw_model_event" and e.data.type == "raw_server_event"
    ]
    kinds = [d["type"] for d in server]
    assert "response.function_call_arguments.done" not in kinds
    done = [d["item"] for d in server if d["type"] == "response.output_item.done"]
    call = next(item for item in done if item["type"] == "mcp_call")
    assert call["name"] == "get_weather" and call["output"] == weather_report("Paris")
    assert not [e for e in events if e.type in ("tool_start", "tool_end")]
    assert "audio" in [e.type for e in events]
    assert engines.chat.seen == []  # type: ignore[attr-defined]  # the tool's own sentence was spoken
