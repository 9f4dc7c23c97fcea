"""The history a realtime reply is given: bounded, and stable at the front so the prompt cache holds."""

from __future__ import annotations

import itertools

from pipelines.realtime.conversation import Conversation


def _message(n: int) -> dict[str, object]:
    role = "user" if n % 2 == 0 else "assistant"
    kind = "input_text" if role == "user" else "output_text"
    return {"id": f"item_{n}", "type": "message", "role": role, "content": [{"type": kind, "text": f"m{n}"}]}


def test_history_window_moves_in_steps_not_every_turn() -> None:
    conversation = Conversation()
    firsts: list[str] = []
    for n in range(40):
        conversation.add(_message(n))
        messages = conversation.to_messages("be brief", max_items=12)
        assert messages[0].role == "system"
        assert 1 <= len(messages) - 1 <= 12
        assert messages[-1].content == f"m{n}"  # the newest item is always there
        firsts.append(messages[1].content)
    # the first item after the system prompt changes once per 6 new items, not with every item
    changes = sum(1 for a, b in itertools.pairwise(firsts) if a != b)
    assert changes == 5  # at 13, 19, 25, 31 and 37 items
    assert firsts[:12] == ["m0"] * 12


def test_no_limit_keeps_everything() -> None:
    conversation = Conversation()
    for n in range(20):
        conversation.add(_message(n))
    assert len(conversation.to_messages("x")) == 21
