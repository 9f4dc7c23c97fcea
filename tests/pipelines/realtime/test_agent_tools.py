"""Server-side agent tools and handoffs in a realtime session, with the example agents and fake models."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipelines.agents.examples import weather_report
from pipelines.agents.registry import load_agents
from pipelines.realtime.agent_tools import AgentTools
from pipelines.realtime.persistence import MemorySink
from pipelines.realtime.tools import AgentRunner
from tests.pipelines.realtime.fakes import FixedSTT, fake_engines, silence_pcm24, tone_pcm24
from tests.pipelines.realtime.harness import Harness

MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
REPLY = "Happy to help with that."


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def agent_tools() -> AgentTools:
    return AgentTools(load_agents("pipelines.agents.examples:agents", default="Assistant"))


async def say(h: Harness, text: str) -> None:
    await h.send(
        type="conversation.item.create",
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    )
    await h.send(type="response.create")


def transcripts(h: Harness) -> list[str]:
    return [e["transcript"] for e in h.of("response.output_audio_transcript.done")]


def calls(h: Harness) -> list[dict[str, Any]]:
    """The calls the agent made: each runs here, so clients see an `mcp_call` item, never a function call
    they would have to answer."""
    assert h.of("response.function_call_arguments.done") == []
    return [e["item"] for e in h.of("response.output_item.done") if e["item"]["type"] == "mcp_call"]


def test_agent_tools_is_an_agent_runner() -> None:
    tools = agent_tools()
    assert isinstance(tools, AgentRunner)
    assert {d["name"] for d in tools.definitions()} == {
        "get_weather",
        "get_order_status",
        "transfer_to_support",
    }


def test_spoken_weather_question_calls_the_tool_server_side() -> None:
    async def main() -> None:
        engines = fake_engines(reply=REPLY)
        engines.stt = FixedSTT("What's the weather in Paris?")
        sink = MemorySink()
        h = Harness(engines, tools=agent_tools(), sink=sink)
        await h.session.start()
        assert h.events[0]["session"]["instructions"].startswith("You are a helpful voice assistant.")
        await h.audio(silence_pcm24(0.3) + tone_pcm24(1.0) + silence_pcm24(0.8))
        await h.wait_for("response.done", 2)
        await h.settle(0.1)

        types = h.types()
        order = [
            "conversation.item.input_audio_transcription.completed",
            "response.created",
            "response.output_item.added",
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
            "response.mcp_call.in_progress",
            "response.mcp_call.completed",
            "response.output_item.done",
            "response.done",
        ]
        assert [types.index(t) for t in order] == sorted(types.index(t) for t in order)
        (call,) = calls(h)
        assert call["name"] == "get_weather" and call["server_label"] == "voicechain"
        assert json.loads(call["arguments"]) == {"city": "Paris"}
        assert call["output"] == weather_report("Paris") and call["error"] is None
        added = h.of("response.output_item.added")[0]["item"]
        assert added["type"] == "mcp_call" and added["name"] == "get_weather" and added["output"] is None

        items = list(h.session.conversation)
        assert [i["type"] for i in items] == ["message", "mcp_call", "message"]
        assert items[1]["id"] == call["id"] and items[1]["output"] == weather_report("Paris")
        # the reply is the tool's own sentence, spoken: the chat model was never asked
        assert transcripts(h) == [weather_report("Paris")]
        assert h.of("response.output_audio.delta")
        assert all(r["response"]["status"] == "completed" for r in h.of("response.done"))
        assert engines.chat.seen == []  # type: ignore[attr-defined]

        kinds = [r.kind for r in sink.records.values()]
        assert kinds.count("function_call") == 1 and kinds.count("function_call_output") == 1
        stored = next(r for r in sink.records.values() if r.kind == "function_call")
        assert stored.data["name"] == "get_weather" and "Paris" in stored.data["arguments"]

    run(main())


def test_handoff_switches_agent_and_later_weather_calls_no_tool() -> None:
    async def main() -> None:
        engines = fake_engines(reply=REPLY)
        sink = MemorySink()
        tools = agent_tools()
        h = Harness(engines, tools=tools, sink=sink)
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await say(h, "Please connect me to customer support.")
        await h.wait_for("response.done", 2)

        (call,) = calls(h)
        assert call["name"] == "transfer_to_support"
        assert tools.agent_name == "Support"
        updated = h.of("session.updated")[-1]["session"]
        assert updated["instructions"].startswith("You are a patient customer-support agent")
        output = next(i for i in h.session.conversation if i["type"] == "mcp_call")
        assert json.loads(output["output"]) == {"assistant": "Support"}
        # the Support agent answers the same request with the model, under its own instructions
        assert transcripts(h) == [REPLY]
        assert engines.chat.seen[-1][0].content.startswith("You are a patient customer-support agent")  # type: ignore[attr-defined]
        await h.settle(0.1)
        switch = [r for r in sink.records.values() if r.kind == "agent"]
        assert [(r.text, r.data) for r in switch] == [("Support", {"from": "Assistant", "to": "Support"})]

        await say(h, "What's the weather in Paris?")
        await h.wait_for("response.done", 3)
        assert len(calls(h)) == 1  # Support has no weather tool
        assert transcripts(h) == [REPLY, REPLY]
        assert tools.definitions()[0]["name"] == "get_order_status"

    run(main())


def test_unrelated_utterance_calls_no_tool() -> None:
    async def main() -> None:
        engines = fake_engines(reply=REPLY)
        h = Harness(engines, tools=agent_tools())
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await say(h, "Tell me a joke.")
        done = await h.wait_for("response.done")
        await h.settle(0.1)
        assert calls(h) == []
        assert [o["type"] for o in done["response"]["output"]] == ["message"]
        assert transcripts(h) == [REPLY]
        assert len(h.of("response.done")) == 1
        # the model is not offered the agent's tools: it streams its reply
        assert engines.chat.seen and "mcp_call" not in {i["type"] for i in h.session.conversation}

    run(main())


def test_missing_city_is_asked_for_and_the_answer_calls_the_tool() -> None:
    async def main() -> None:
        h = Harness(fake_engines(reply=REPLY), tools=agent_tools())
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await say(h, "What's the weather like tomorrow?")
        await h.wait_for("response.done")
        assert transcripts(h) == ["Which city would you like the weather for?"]
        await say(h, "In Paris, please.")
        await h.wait_for("response.done", 3)
        assert [json.loads(c["arguments"]) for c in calls(h)] == [{"city": "Paris"}]
        assert transcripts(h)[-1] == weather_report("Paris")

    run(main())


def test_a_client_that_asks_for_the_follow_up_itself_gets_one_reply_and_no_error() -> None:
    """The JS SDK retrieves an `mcp_call` item when it starts and sends `response.create` once it is
    done: the retrieve is answered, and the request is the follow-up the session starts anyway."""

    async def main() -> None:
        h = Harness(fake_engines(reply=REPLY), tools=agent_tools())
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await say(h, "What's the weather in Paris?")
        started = await h.wait_for("response.mcp_call.in_progress")
        await h.send(type="conversation.item.retrieve", item_id=started["item_id"])
        await h.wait_for("response.done")
        await h.send(type="response.create")
        await h.wait_for("response.done", 2)
        await h.settle(0.3)
        assert h.of("error") == []
        assert h.of("conversation.item.retrieved")[0]["item"]["type"] == "mcp_call"
        assert len(h.of("response.created")) == 2 and transcripts(h) == [weather_report("Paris")]
        await h.send(type="response.create")  # asked for later, it is a response of the client's own
        await h.wait_for("response.done", 3)
        assert h.of("error") == []

    run(main())


def test_a_question_back_after_which_city_is_not_a_city() -> None:
    """Live: after "Which city?", the next turn once went out as get_weather(city="What's")."""

    async def main() -> None:
        h = Harness(fake_engines(reply=REPLY), tools=agent_tools())
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await say(h, "What's the weather like tomorrow?")
        await h.wait_for("response.done")
        assert transcripts(h) == ["Which city would you like the weather for?"]
        await say(h, "What's that?")
        await h.wait_for("response.done", 2)
        await h.settle(0.1)
        assert calls(h) == []  # the model answers; the positive path is the test above
        assert transcripts(h)[-1] == REPLY

    run(main())
