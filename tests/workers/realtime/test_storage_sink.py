"""The conversation as stored: what the user said, what was heard of each reply, tool calls."""

from __future__ import annotations

from pathlib import Path

from pipelines.realtime.persistence import Record
from pipelines.storage.database import session_scope
from pipelines.storage.migrate import upgrade
from pipelines.storage.turns import get_conversation
from workers.realtime.storage_sink import StorageSink


def _open_sink(tmp_path: Path) -> tuple[str, StorageSink, str]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    sink = StorageSink(url)
    return url, sink, sink.open("sess_1", owner="key_abc", agent="Assistant")


def test_turns_record_heard_text_and_tools(tmp_path: Path) -> None:
    url, sink, conv_id = _open_sink(tmp_path)
    sink.upsert(Record("user", "item_u1", "What is the weather?"))
    sink.upsert(
        Record("function_call", "item_f1", "", {"name": "get_weather", "call_id": "c1", "arguments": "{}"})
    )
    sink.upsert(Record("function_call_output", "item_o1", "sunny", {"call_id": "c1"}))
    sink.upsert(
        Record(
            "assistant", "item_a1", "It is", {"generated": "It is sunny. Wear a hat.", "interrupted": True}
        )
    )
    sink.upsert(
        Record("assistant", "item_a1", "It", {"interrupted": True, "truncated": True})
    )  # client truncate
    sink.upsert(Record("user", "item_u1", "What is the weather?"))  # a repeat is a no-op
    sink.upsert(Record("user", "item_u2", "Thanks"))
    with session_scope(url) as db:
        conv = get_conversation(db, conv_id, owner="key_abc")
        turns = conv.turns
        assert [t.transcript for t in turns] == ["What is the weather?", "Thanks"]
        first = turns[0]
        assert first.source == "realtime"
        assert first.reply_text == "It is sunny. Wear a hat."
        assert first.spoken_text == "It"
        kinds = [e["type"] for e in first.events]
        assert kinds == ["function_call", "function_call_output", "interruption"]


def test_handoff_record_sets_the_conversation_agent(tmp_path: Path) -> None:
    url, sink, conv_id = _open_sink(tmp_path)
    sink.upsert(Record("user", "item_u1", "Please connect me to customer support."))
    sink.upsert(Record("agent", "item_h1", "Support", {"from": "Assistant", "to": "Support"}))
    sink.upsert(Record("user", "item_u2", "Where is my order?"))
    with session_scope(url) as db:
        conv = get_conversation(db, conv_id, owner="key_abc")
        assert conv.agent == "Support"
        first, second = conv.turns
        assert first.agent == "Support" and second.agent == "Support"
        assert first.events[-1] == {
            "item_id": "item_h1",
            "type": "agent",
            "text": "Support",
            "from": "Assistant",
            "to": "Support",
        }


def test_guardrail_record_is_an_event_of_its_turn(tmp_path: Path) -> None:
    url, sink, conv_id = _open_sink(tmp_path)
    sink.upsert(Record("user", "item_u1", "What is my password?"))
    refusal = "I can't help with passwords."
    sink.upsert(Record("assistant", "item_a1", refusal, {"generated": refusal}))
    sink.upsert(
        Record(
            "guardrail", "item_g1", refusal, {"kind": "input", "name": "no_credentials", "agent": "Assistant"}
        )
    )
    with session_scope(url) as db:
        (turn,) = get_conversation(db, conv_id, owner="key_abc").turns
        assert turn.spoken_text == refusal
        assert turn.events == [
            {
                "item_id": "item_g1",
                "type": "guardrail",
                "text": refusal,
                "kind": "input",
                "name": "no_credentials",
                "agent": "Assistant",
            }
        ]
