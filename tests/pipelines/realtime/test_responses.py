"""Responses alone: a start or an interrupt in, GA response events out (fake models, no session)."""

from __future__ import annotations

import asyncio
from typing import Any

from pipelines.realtime.config import SessionConfig
from pipelines.realtime.conversation import Conversation
from pipelines.realtime.gate import Gate
from pipelines.realtime.protocol import validate_server_event
from pipelines.realtime.response import Outcome, Response
from pipelines.realtime.responses import Responses
from tests.pipelines.realtime.fakes import fake_engines


def make(
    pending: set[asyncio.Task[None]], words: str
) -> tuple[Responses, list[dict[str, Any]], list[Outcome]]:
    engines = fake_engines(reply="It is sunny.")
    events: list[dict[str, Any]] = []
    outcomes: list[Outcome] = []

    async def send(data: dict[str, Any]) -> None:
        validate_server_event(data)
        events.append(data)

    async def after(outcome: Outcome, response: Response) -> None:
        outcomes.append(outcome)

    def build(config: SessionConfig, messages: list[Any], gate: Gate) -> Response:
        return Response(
            engines=engines,
            config=config,
            conversation=Conversation(),
            messages=messages,
            tools=[],
            gate=gate,
        )

    responses = Responses(
        send=send,
        build=build,
        config=SessionConfig,
        history=lambda c: [],
        last_user_text=lambda: words,
        pending=lambda: pending,
        after=after,
    )
    return responses, events, outcomes


def test_a_response_answers_and_hands_its_outcome_on() -> None:
    async def main() -> None:
        responses, events, outcomes = make(set(), "Is it sunny?")
        responses.start()
        assert responses.busy
        while not outcomes:
            await asyncio.sleep(0.01)
        types = [e["type"] for e in events]
        assert types[0] == "response.created" and types[-1] == "response.done"
        assert outcomes[0].status == "completed" and outcomes[0].text == "It is sunny."
        assert not responses.busy and responses.current is None

    asyncio.run(main())


def test_a_requested_response_interrupted_while_waiting_for_words_still_reports_how_it_ended() -> None:
    async def main() -> None:
        stuck: set[asyncio.Task[None]] = {asyncio.ensure_future(asyncio.sleep(60))}
        responses, events, outcomes = make(stuck, "Hello?")
        responses.start()  # asked for by the client: not skipped when silent
        await asyncio.sleep(0.05)
        await responses.interrupt("client_cancelled")
        assert [e["type"] for e in events] == ["response.created", "response.done"]
        assert events[-1]["response"]["status"] == "cancelled" and outcomes == []
        for task in stuck:
            task.cancel()

    asyncio.run(main())


def test_a_turn_of_noise_gets_no_response() -> None:
    async def main() -> None:
        responses, events, outcomes = make(set(), "")
        responses.start(skip_if_silent=True)
        await asyncio.sleep(0.1)
        assert events == [] and outcomes == [] and not responses.busy

    asyncio.run(main())
