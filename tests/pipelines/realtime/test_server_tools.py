"""The server-tool loop alone: a finished response's calls in, output items, records and a handoff out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipelines.agents.examples import weather_report
from pipelines.agents.registry import load_agents
from pipelines.realtime.agent_tools import AgentTools
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.persistence import Record
from pipelines.realtime.protocol import validate_server_event
from pipelines.realtime.response import Outcome
from pipelines.realtime.server_tools import ServerTools
from pipelines.realtime.tools import AgentRunner


class Loop:
    def __init__(self) -> None:
        self.tools = AgentTools(load_agents("pipelines.agents.examples:agents", default="Assistant"))
        self.conversation = Conversation()
        self.events: list[dict[str, Any]] = []
        self.records: list[Record] = []
        self.handoffs: list[str] = []
        self.responded = 0
        self.server = ServerTools(
            self.tools,
            self.conversation,
            send=self.send,
            persist=self.records.append,
            handoff=self.handoff,
            respond=self.respond,
        )

    async def send(self, data: dict[str, Any]) -> None:
        validate_server_event(data)
        self.events.append(data)

    async def handoff(self, runner: AgentRunner) -> None:
        self.handoffs.append(runner.agent_name)

    def respond(self) -> None:
        self.responded += 1


def call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"id": "item_" + call_id, "name": name, "call_id": call_id, "arguments": json.dumps(arguments)}


def outcome(status: str, *calls: dict[str, Any]) -> Outcome:
    return Outcome("resp_1", status, None, calls=list(calls))


def test_only_a_completed_responses_calls_to_own_tools_run_here() -> None:
    loop = Loop()
    weather, client = call("get_weather", {"city": "Paris"}), call("open_door", {}, "call_2")
    assert loop.server.owned(outcome("completed", weather, client)) == [weather]
    assert loop.server.owned(outcome("cancelled", weather)) == []  # a barge-in: the call is dropped


def test_a_call_is_answered_with_an_output_item_and_the_model_goes_on() -> None:
    async def main() -> None:
        loop = Loop()
        await loop.server.run([call("get_weather", {"city": "Paris"})])
        assert [e["type"] for e in loop.events] == ["conversation.item.added", "conversation.item.done"]
        item = loop.events[0]["item"]
        assert item["type"] == "function_call_output" and item["call_id"] == "call_1"
        assert item["output"] == weather_report("Paris")
        assert list(loop.conversation)[-1]["id"] == item["id"]
        assert loop.records == [
            Record("function_call_output", item["id"], weather_report("Paris"), {"call_id": "call_1"})
        ]
        assert loop.handoffs == [] and loop.responded == 1

    asyncio.run(main())


def test_a_handoff_is_recorded_and_handed_to_the_session_before_the_next_response() -> None:
    async def main() -> None:
        loop = Loop()
        await loop.server.run([call("transfer_to_support", {})])
        assert loop.tools.agent_name == "Support" and loop.handoffs == ["Support"]
        agent = [r for r in loop.records if r.kind == "agent"]
        assert [(r.text, r.data) for r in agent] == [("Support", {"from": "Assistant", "to": "Support"})]
        assert loop.responded == 1

    asyncio.run(main())
