"""Session behaviour with fake models: client events in, GA server event types out."""

from __future__ import annotations

import asyncio
import json

from pipelines.providers.base import ToolCall
from pipelines.realtime.persistence import MemorySink
from pipelines.realtime.session import SessionLimits
from tests.pipelines.realtime.fakes import fake_engines, silence_pcm24, tone_pcm24
from tests.pipelines.realtime.harness import Harness

MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def response_events(types: list[str]) -> list[str]:
    start = types.index("response.created")
    return [t for t in types[start:] if t not in ("response.output_audio.delta",)]


def test_session_created_first() -> None:
    async def main() -> None:
        h = Harness(fake_engines())
        await h.session.start()
        assert h.types() == ["session.created"]
        session = h.events[0]["session"]
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}

    run(main())


def test_manual_commit_then_response_create() -> None:
    async def main() -> None:
        h = Harness(fake_engines())
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        assert h.events[-1]["session"]["audio"]["input"]["turn_detection"] is None
        await h.audio(tone_pcm24(1.0))
        await h.send(type="input_audio_buffer.commit")
        await h.send(type="response.create")
        done = await h.wait_for("response.done")
        assert done["response"]["status"] == "completed"
        types = h.types()
        assert "input_audio_buffer.speech_started" not in types
        assert types.index("input_audio_buffer.committed") < types.index("response.created")
        transcription = h.of("conversation.item.input_audio_transcription.completed")[0]
        assert transcription["transcript"] == "What is the weather like?"
        assert response_events(types) == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_audio_transcript.delta",
            "response.output_audio_transcript.delta",
            "response.output_audio_transcript.delta",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        assert len(h.of("response.output_audio.delta")) > 5
        assert h.of("response.output_audio_transcript.done")[0]["transcript"] == (
            "It is sunny. Take a hat. Enjoy your day."
        )

    run(main())


def test_commit_of_empty_buffer_is_an_error_and_session_lives() -> None:
    async def main() -> None:
        h = Harness(fake_engines())
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await h.send(type="input_audio_buffer.commit")
        assert h.events[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
        await h.session.handle("{not json")
        assert h.events[-1]["error"]["code"] == "invalid_json"
        await h.send(type="no.such.event")
        assert h.events[-1]["error"]["code"] == "unknown_event"
        await h.send(type="conversation.item.truncate", item_id="x")
        assert h.events[-1]["error"]["param"] == "audio_end_ms"
        await h.send(type="input_audio_buffer.append", audio="***")
        assert h.events[-1]["type"] == "error"
        await h.send(
            type="conversation.item.create",
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        )
        await h.send(type="response.create")
        assert (await h.wait_for("response.done"))["response"]["status"] == "completed"

    run(main())


def test_server_vad_turn_uses_speculation_once() -> None:
    async def main() -> None:
        engines = fake_engines()
        h = Harness(engines)
        await h.session.start()
        await h.audio(silence_pcm24(0.3) + tone_pcm24(1.0) + silence_pcm24(0.8))
        done = await h.wait_for("response.done")
        assert done["response"]["status"] == "completed"
        types = h.types()
        order = [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
            "response.output_audio.delta",
            "response.done",
        ]
        assert [types.index(t) for t in order] == sorted(types.index(t) for t in order)
        started = h.of("input_audio_buffer.speech_started")[0]
        stopped = h.of("input_audio_buffer.speech_stopped")[0]
        assert 250 <= started["audio_start_ms"] <= 350
        assert started["item_id"] == stopped["item_id"] == h.of("input_audio_buffer.committed")[0]["item_id"]
        assert stopped["audio_end_ms"] >= 1300 + 500 - 40
        assert engines.stt.calls == 1  # type: ignore[attr-defined]  # the speculative transcript was adopted

    run(main())


def test_model_reads_the_conversation_while_the_user_speaks() -> None:
    """At session start the instructions, and at each speech start the history so far, are prefilled,
    and the reply's prompt starts with them."""

    async def main() -> None:
        engines = fake_engines(reply="It is sunny.")
        h = Harness(engines)
        await h.session.start()
        for turn in (1, 2):
            await h.audio(tone_pcm24(0.6) + silence_pcm24(0.8))
            await h.wait_for("response.done", turn)
            await h.settle()
        chat = engines.chat
        assert len(chat.prefilled) == 3  # type: ignore[attr-defined]
        at_start, first, second = chat.prefilled  # type: ignore[attr-defined]
        assert [m.role for m in at_start] == [m.role for m in first] == ["system"]
        assert [m.role for m in second] == ["system", "user", "assistant"]
        prompt = chat.seen[-1]  # type: ignore[attr-defined]
        assert prompt[: len(second)] == second and prompt[len(second)].role == "user"

    run(main())


def test_resumed_speech_discards_speculation() -> None:
    async def main() -> None:
        engines = fake_engines()
        h = Harness(engines)
        await h.session.start()
        await h.audio(tone_pcm24(0.6) + silence_pcm24(0.3) + tone_pcm24(0.6) + silence_pcm24(0.8))
        await h.wait_for("response.done")
        await h.settle()
        assert len(h.of("input_audio_buffer.speech_started")) == 1
        assert len(h.of("response.created")) == 1
        assert len(h.of("conversation.item.added")) == 2  # the user's item and one reply

    run(main())


def test_barge_in_cancels_and_history_keeps_only_what_was_heard() -> None:
    async def main() -> None:
        engines = fake_engines(reply="One two three four five. Six seven eight nine ten. Eleven twelve.")
        h = Harness(engines, limits=SessionLimits(output_lead_ms=100))
        await h.session.start()
        await h.audio(tone_pcm24(0.6) + silence_pcm24(0.7))
        await h.wait_for("response.output_audio.delta")
        await asyncio.sleep(0.3)  # the user hears about 0.3 s, then talks over the reply
        await h.audio(tone_pcm24(0.3))
        done = await h.wait_for("response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        types = h.types()
        assert types.index(
            "input_audio_buffer.speech_started", types.index("response.created")
        ) < types.index("response.done")
        heard = h.of("response.output_audio_transcript.done")[0]["transcript"]
        assert heard and len(heard.split()) < 5, heard
        assistant = next(i for i in h.session.conversation if i.get("role") == "assistant")
        assert assistant["content"][0]["transcript"] == heard
        assert assistant["status"] == "incomplete"
        # nothing more of the cancelled reply arrives afterwards
        count = len(h.of("response.output_audio.delta"))
        await asyncio.sleep(0.3)
        assert len(h.of("response.output_audio.delta")) == count
        # the next turn's prompt carries only the heard words
        await h.audio(silence_pcm24(0.7))
        await h.wait_for("response.done", 2)
        prompt = engines.chat.seen[-1]  # type: ignore[attr-defined]
        assert [m.content for m in prompt if m.role == "assistant"] == [heard]

    run(main())


def test_client_cancel_and_truncate() -> None:
    async def main() -> None:
        engines = fake_engines(reply="One two three four five. Six seven eight nine ten.")
        h = Harness(engines)
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await h.send(type="response.cancel")
        assert h.events[-1]["error"]["code"] == "response_cancel_not_active"
        await h.send(
            type="conversation.item.create",
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Count"}]},
        )
        await h.send(type="response.create")
        done = await h.wait_for("response.done")
        item_id = done["response"]["output"][0]["id"]
        # 5 words of 80 ms each = 400 ms for the first sentence: cut in its middle
        await h.send(type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=200)
        truncated = h.of("conversation.item.truncated")[0]
        assert truncated["audio_end_ms"] == 200
        assistant = h.session.conversation.get(item_id)
        assert assistant is not None
        assert assistant.item["content"][0]["transcript"] == "One two"
        await h.send(type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=99_999)
        assert h.events[-1]["type"] == "error"
        await h.send(type="conversation.item.delete", item_id=item_id)
        assert h.events[-1] == {**h.events[-1], "type": "conversation.item.deleted", "item_id": item_id}

    run(main())


def test_response_create_while_active_is_refused() -> None:
    async def main() -> None:
        h = Harness(fake_engines(token_delay_s=0.05))
        await h.session.start()
        await h.send(type="session.update", session=MANUAL)
        await h.send(
            type="conversation.item.create",
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        )
        await h.send(type="response.create")
        await h.send(type="response.create")
        assert h.events[-1]["error"]["code"] == "conversation_already_has_active_response"
        await h.send(type="response.cancel")
        done = await h.wait_for("response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"

    run(main())


def test_client_function_tool_round_trip() -> None:
    async def main() -> None:
        engines = fake_engines(reply="It is sunny in Paris.")
        engines.chat.tool_call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')  # type: ignore[attr-defined]
        h = Harness(engines)
        await h.session.start()
        tool = {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
        await h.send(type="session.update", session={**MANUAL, "tools": [tool]})
        await h.send(
            type="conversation.item.create",
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        )
        await h.send(type="response.create")
        done = await h.wait_for("response.done")
        call = done["response"]["output"][0]
        assert call["type"] == "function_call" and call["name"] == "get_weather"
        args = h.of("response.function_call_arguments.done")[0]
        assert json.loads(args["arguments"]) == {"city": "Paris"} and args["call_id"] == "call_1"
        await h.send(
            type="conversation.item.create",
            item={"type": "function_call_output", "call_id": "call_1", "output": '{"sky": "sunny"}'},
        )
        await h.send(type="response.create")
        done = await h.wait_for("response.done", 2)
        assert done["response"]["output"][0]["content"][0]["transcript"] == "It is sunny in Paris."
        prompt = engines.chat.seen[-1]  # type: ignore[attr-defined]
        assert [m.role for m in prompt] == ["system", "user", "assistant", "tool"]

    run(main())


def test_text_modality() -> None:
    async def main() -> None:
        h = Harness(fake_engines())
        await h.session.start()
        await h.send(type="session.update", session={**MANUAL, "output_modalities": ["text"]})
        await h.send(
            type="conversation.item.create",
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        )
        await h.send(type="response.create")
        await h.wait_for("response.done")
        assert "response.output_audio.delta" not in h.types()
        assert h.of("response.output_text.done")[0]["text"] == "It is sunny. Take a hat. Enjoy your day."

    run(main())


def test_closing_right_after_a_reply_still_stores_it_in_order() -> None:
    """A client that hangs up as soon as the reply is done must not lose the reply (or its turn)."""

    async def main() -> None:
        sink = MemorySink()
        h = Harness(fake_engines(reply="It is sunny."), sink=sink)
        await h.session.start()
        await h.audio(tone_pcm24(0.6) + silence_pcm24(0.8))
        await h.wait_for("response.done")
        await h.session.close()
        kinds = [r.kind for r in sink.records.values()]
        assert kinds == ["user", "assistant"]
        assistant = next(r for r in sink.records.values() if r.kind == "assistant")
        assert assistant.text == "It is sunny." and assistant.data["status"] == "completed"
        assert sink.closed

    run(main())


def test_sessions_answering_at_once_share_the_model_without_deadlock() -> None:
    """Three sessions of one process reply at the same moment on one model (which, like llama.cpp, keeps
    its lock across a stream's tokens): every reply completes, one generation at a time."""

    async def main() -> None:
        engines = fake_engines(reply="One two three. Four five six. Seven eight nine.", token_delay_s=0.01)
        sessions = [Harness(engines) for _ in range(3)]
        for h in sessions:
            await h.session.start()
        turn = tone_pcm24(0.6) + silence_pcm24(0.8)
        await asyncio.gather(*(h.audio(turn) for h in sessions))
        done = await asyncio.gather(*(h.wait_for("response.done", timeout=15) for h in sessions))
        assert [d["response"]["status"] for d in done] == ["completed"] * 3

    run(main())
