"""The session's own tools alone: calls in, outputs, records, a handoff and the follow-up response out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipelines.agents.examples import weather_report
from pipelines.agents.registry import load_agents
from pipelines.providers.base import ChatMessage, ToolCall
from pipelines.realtime.agent_tools import AgentTools
from pipelines.realtime.config import SessionConfig
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.gate import Gate
from pipelines.realtime.persistence import Record, outcome_records
from pipelines.realtime.protocol import validate_server_event
from pipelines.realtime.response import Outcome, Response
from pipelines.realtime.server_tools import ServerTools
from pipelines.realtime.tools import AgentRunner, Plan
from tests.pipelines.realtime.fakes import fake_engines


class Loop:
    def __init__(self) -> None:
        self.tools = AgentTools(load_agents("pipelines.agents.examples:agents", default="Assistant"))
        self.records: list[Record] = []
        self.handoffs: list[str] = []
        self.responded = 0
        self.server = ServerTools(
            self.tools, persist=self.records.append, handoff=self.handoff, respond=self.respond
        )

    async def handoff(self, runner: AgentRunner) -> None:
        self.handoffs.append(runner.agent_name)

    def respond(self) -> None:
        self.responded += 1


def mcp(name: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "mcp_call", "id": call_id, "name": name, "call_id": call_id, "arguments": "{}"}


def outcome(status: str, *calls: dict[str, Any]) -> Outcome:
    return Outcome("resp_1", status, None, calls=list(calls))


def test_a_call_runs_the_agents_tool_and_a_follow_up_is_due() -> None:
    async def main() -> None:
        loop = Loop()
        assert loop.server.names() == {"get_weather", "get_order_status", "transfer_to_support"}
        assert not loop.server.follow_up_due
        output = await loop.server.run("get_weather", json.dumps({"city": "Paris"}))
        assert output == weather_report("Paris") and loop.server.follow_up_due

    asyncio.run(main())


def test_only_a_completed_responses_calls_run_here_are_followed_up() -> None:
    loop = Loop()
    weather = mcp("get_weather")
    client = {
        "type": "function_call",
        "id": "item_2",
        "name": "open_door",
        "call_id": "c2",
        "arguments": "{}",
    }
    assert loop.server.ran(outcome("completed", weather, client)) == [weather]
    assert loop.server.ran(outcome("completed", client)) == []  # the client answers its own tools
    assert loop.server.ran(outcome("failed", weather)) == []


def test_the_follow_up_responds_and_notes_a_handoff_first() -> None:
    async def main() -> None:
        loop = Loop()
        await loop.server.follow_up()
        assert loop.responded == 1 and loop.handoffs == [] and loop.records == []
        await loop.server.run("transfer_to_support", "{}")
        await loop.server.follow_up()
        assert loop.tools.agent_name == "Support" and loop.handoffs == ["Support"]
        agent = [(r.text, r.data) for r in loop.records if r.kind == "agent"]
        assert agent == [("Support", {"from": "Assistant", "to": "Support"})]
        assert loop.responded == 2
        assert loop.server.names() == {"get_order_status"}  # the new agent's tools run here now

    asyncio.run(main())


def test_a_clients_request_for_the_follow_up_is_claimed_once() -> None:
    async def main() -> None:
        loop = Loop()
        assert not loop.server.claim()  # nothing ran here: the client asks for a response of its own
        await loop.server.run("get_weather", json.dumps({"city": "Paris"}))
        assert loop.server.claim() and not loop.server.claim()
        await loop.server.run("get_weather", json.dumps({"city": "Rome"}))
        loop.server.settle()  # the follow-up ended before the client asked: its request is its own
        assert not loop.server.claim()

    asyncio.run(main())


class Exploding:
    """A server tool that fails."""

    def definitions(self) -> list[dict[str, Any]]:
        return [{"type": "function", "name": "explode", "parameters": {"type": "object", "properties": {}}}]

    async def run(self, name: str, arguments: str) -> str:
        raise RuntimeError("boom")


def test_a_response_runs_a_server_tool_as_an_mcp_call_and_a_failure_stays_on_the_item() -> None:
    async def main() -> None:
        events: list[dict[str, Any]] = []

        async def send(data: dict[str, Any]) -> None:
            validate_server_event(data)
            events.append(data)

        server = ServerTools(
            Exploding(), persist=lambda r: None, handoff=Loop().handoff, respond=lambda: None
        )
        response = Response(
            engines=fake_engines(),
            config=SessionConfig(),
            conversation=Conversation(),
            messages=[ChatMessage(role="user", content="Blow it up.")],
            tools=[],
            gate=Gate(send),
            plan=Plan(calls=(ToolCall(id="call_x", name="explode", arguments="{}"),)),
            server_tools=server,
        )
        outcome = await response.start()
        assert [e["type"] for e in events] == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
            "response.mcp_call.in_progress",
            "response.mcp_call.failed",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        item = events[-1]["response"]["output"][0]
        assert item["type"] == "mcp_call" and item["id"] == "call_x" and item["server_label"] == "voicechain"
        assert item["output"] is None and item["error"] == {"type": "tool_execution_error", "message": "boom"}
        assert outcome.status == "completed" and server.ran(outcome) and server.follow_up_due
        records = outcome_records(outcome)
        assert [(r.kind, r.item_id, r.text) for r in records] == [
            ("function_call", "call_x", ""),
            ("function_call_output", "call_x:output", "The tool failed: boom"),
        ]

    asyncio.run(main())
