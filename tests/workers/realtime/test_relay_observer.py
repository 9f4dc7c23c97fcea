"""The relay's reading of upstream events alone: GA server events in, records, calls and verdicts out."""

from __future__ import annotations

import base64
from typing import Any

from pipelines.realtime.persistence import Record
from workers.realtime.relay_observer import Call, UpstreamObserver


class Seen:
    def __init__(self, owned: frozenset[str] = frozenset({"get_weather"})) -> None:
        self.records: list[Record] = []
        self.runs: list[list[Call]] = []
        self.observer = UpstreamObserver(
            persist=self.records.append, owned=lambda: owned, run_calls=self.runs.append
        )

    def feed(self, *events: dict[str, Any]) -> list[bool]:
        return [self.observer.observe(e) for e in events]


def call_item(name: str, call_id: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": "item_" + call_id,
        "name": name,
        "call_id": call_id,
        "arguments": "{}",
    }


def done(status: str, *output: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.done", "response": {"status": status, "output": list(output)}}


def test_the_relays_own_session_updated_is_hidden_and_a_refused_one_forgotten() -> None:
    seen = Seen()
    seen.observer.expect_update("e_own", hide=True)
    seen.observer.expect_update("e_bad", hide=False)
    seen.observer.expect_update("e_client", hide=False)
    refused = {"type": "error", "error": {"event_id": "e_bad", "message": "no"}}
    assert seen.feed({"type": "session.updated", "session": {}}, refused, {"type": "session.updated"}) == [
        False,
        True,
        True,
    ]


def test_user_words_replies_and_tool_outputs_become_records() -> None:
    seen = Seen()
    user = {
        "type": "message",
        "role": "user",
        "id": "i_u",
        "content": [{"type": "input_text", "text": "Hi."}],
    }
    output = {"type": "function_call_output", "id": "i_o", "call_id": "c1", "output": "Sunny."}
    seen.feed(
        {"type": "conversation.item.added", "item": user},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "i_v",
            "transcript": "Yo.",
        },
        {"type": "conversation.item.done", "item": output},
        {
            "type": "response.output_audio_transcript.done",
            "item_id": "i_a",
            "response_id": "r1",
            "transcript": "Hey.",
        },
    )
    assert seen.records == [
        Record("user", "i_u", "Hi."),
        Record("user", "i_v", "Yo."),
        Record("function_call_output", "i_o", "Sunny.", {"call_id": "c1"}),
        Record("assistant", "i_a", "Hey.", {"generated": "Hey.", "response_id": "r1"}),
    ]


def test_a_truncated_reply_is_stored_as_the_share_of_its_audio_that_played() -> None:
    seen = Seen()
    second = base64.b64encode(bytes(48_000)).decode()  # 1 s of 24 kHz PCM16
    seen.feed(
        {"type": "response.output_audio.delta", "item_id": "i_a", "delta": second},
        {"type": "response.output_audio.delta", "item_id": "i_a", "delta": second},
        {
            "type": "response.output_audio_transcript.done",
            "item_id": "i_a",
            "transcript": "one two three four",
        },
        {"type": "conversation.item.truncated", "item_id": "i_a", "audio_end_ms": 1000},
    )
    last = seen.records[-1]
    assert last.text == "one two" and last.data["generated"] == "one two three four"
    assert last.data["interrupted"] and last.data["truncated"]


def test_own_tool_calls_run_once_when_their_response_completes() -> None:
    seen = Seen()
    weather, client = call_item("get_weather", "c1"), call_item("open_door", "c2")
    seen.feed({"type": "response.output_item.done", "item": weather}, done("completed", weather, client))
    assert seen.runs == [[{"name": "get_weather", "call_id": "c1", "arguments": "{}"}]]
    assert [r.kind for r in seen.records].count("function_call") == 3  # each sighting is an upsert
    assert seen.observer.answer("c1") and not seen.observer.answer("c1")
    seen.feed(done("completed", weather))  # seen again after it was answered: not run twice
    assert len(seen.runs) == 1


def test_calls_of_a_cancelled_response_are_dropped() -> None:
    seen = Seen()
    weather = call_item("get_weather", "c1")
    seen.feed(done("cancelled", weather), done("completed"))
    assert seen.runs == []


def test_the_output_format_of_a_session_update_counts_the_reply_audio() -> None:
    seen = Seen()
    seen.observer.expect_update("e_own", hide=True)
    g711 = {"audio": {"output": {"format": {"type": "audio/pcmu"}}}}
    assert seen.feed({"type": "session.updated", "session": g711}) == [False]  # hidden, and still read
    assert seen.observer.output_format == "audio/pcmu"
    second = base64.b64encode(bytes(8_000)).decode()  # 1 s of G.711 at 8 kHz
    seen.feed(
        {"type": "response.output_audio.delta", "item_id": "i_a", "delta": second},
        {"type": "response.output_audio.delta", "item_id": "i_a", "delta": second},
        {
            "type": "response.output_audio_transcript.done",
            "item_id": "i_a",
            "transcript": "one two three four",
        },
        {"type": "conversation.item.truncated", "item_id": "i_a", "audio_end_ms": 1200},
    )
    assert seen.records[-1].text == "one two"  # 1.2 s of 2 s heard; as 24 kHz PCM it would be all of it
