"""The agents' guardrails hold in a live session as they do on the chained path."""

from __future__ import annotations

import asyncio

from pipelines.agents.registry import load_agents
from pipelines.realtime.agent_tools import AgentTools
from pipelines.realtime.persistence import MemorySink
from tests.pipelines.realtime.fakes import FixedSTT, fake_engines, silence_pcm24, tone_pcm24
from tests.pipelines.realtime.harness import Harness

CREDENTIALS_REFUSAL = "I can't help with passwords, PINs or card numbers. Is there anything else?"
LONG_NUMBER_REFUSAL = "Sorry, I can't read that out. Is there anything else I can do?"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def agent_tools() -> AgentTools:
    return AgentTools(load_agents("pipelines.agents.examples:agents", default="Assistant"))


def guardrail_records(sink: MemorySink) -> list[dict[str, object]]:
    return [{"text": r.text, **r.data} for r in sink.records.values() if r.kind == "guardrail"]


async def spoken_turn(heard: str, reply: str) -> tuple[Harness, MemorySink]:
    """One spoken turn with the example agents: the user says `heard`, the model would say `reply`."""
    engines = fake_engines(reply=reply)
    engines.stt = FixedSTT(heard)
    sink = MemorySink()
    h = Harness(engines, tools=agent_tools(), sink=sink)
    await h.session.start()
    await h.audio(silence_pcm24(0.3) + tone_pcm24(1.0) + silence_pcm24(0.8))
    done = await h.wait_for("response.done")
    await h.settle(0.1)
    assert done["response"]["status"] == "completed"
    return h, sink


def test_input_guardrail_answers_instead_of_the_model() -> None:
    async def main() -> None:
        h, sink = await spoken_turn("What is my bank password?", "Your password is hunter2.")
        (spoken,) = [e["transcript"] for e in h.of("response.output_audio_transcript.done")]
        assert spoken == CREDENTIALS_REFUSAL
        assert h.of("response.output_audio.delta")
        assert "hunter2" not in str(h.events)
        assert guardrail_records(sink) == [
            {"text": CREDENTIALS_REFUSAL, "kind": "input", "name": "no_credentials", "agent": "Assistant"}
        ]

    run(main())


def test_output_guardrail_stops_the_reply_before_the_number_is_spoken() -> None:
    async def main() -> None:
        reply = "Let me check. Your card is 4111 1111 1111 1111. It expires soon."
        h, sink = await spoken_turn("Tell me something nice.", reply)
        deltas = [e["delta"] for e in h.of("response.output_audio_transcript.delta")]
        assert "".join(deltas) == f"Let me check. {LONG_NUMBER_REFUSAL}"
        assert "4111" not in str(h.events)  # neither said nor in any event
        assistant = next(r for r in sink.records.values() if r.kind == "assistant")
        assert "4111" not in assistant.text and "4111" not in assistant.data["generated"]
        assert guardrail_records(sink)[0]["name"] == "no_long_numbers"

    run(main())


def test_a_clean_reply_passes_untouched() -> None:
    async def main() -> None:
        h, sink = await spoken_turn("How are you?", "It is sunny. Take a hat.")
        assert [e["transcript"] for e in h.of("response.output_audio_transcript.done")] == [
            "It is sunny. Take a hat."
        ]
        assert guardrail_records(sink) == []

    run(main())
