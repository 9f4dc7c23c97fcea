"""What the small local model sees each turn: a short window of the conversation and a focus line.

Why: SmolLM2-135M copies the shape of the answers in front of it. In a 21-turn live session, from the
8th turn on nearly every answer repeated an earlier one's shape ("The answer to this question is not a
spider." ... "not a sky.") and earlier answers leaked into later ones ("The best work is Paris." after
the France question). `bench/conversation.py` measures it: each answer must mention what its question
was about and must not repeat an earlier answer; the window and focus line below are the variant that
scored best there (table in the README's Agents section).

The window keeps the system prompt, the last `turns` whole exchanges (a user message and everything
after it up to the next user message) and the new user message. It is cut at user messages, so the
window of a conversation is a prefix of the window of the same conversation plus one new user message:
a KV-cache prefill of the conversation so far (`LlamaCppChatModel.prefill`) stays valid for the reply.

Both paths call it through the local chat model (`pipelines.providers.local_llm`), so the chained jobs
and the realtime sessions see the same window. Hosted models get the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pipelines.providers.base import ChatMessage

#: Whole exchanges kept before the new message. Chosen with bench/conversation.py.
HISTORY_TURNS = 1
#: Appended to the system prompt: the model is told what to answer, not only shown the past.
FOCUS = "Answer only the user's latest message, in your own words. Never repeat an earlier answer."


def local_window(
    messages: Sequence[ChatMessage], *, turns: int | None = HISTORY_TURNS, focus: str | None = FOCUS
) -> list[ChatMessage]:
    """`messages` (system first, if any) cut to the last `turns` exchanges, plus the focus line.

    `turns=None` keeps everything (the unwindowed baseline); `focus=None` adds nothing to the system.
    """
    messages = list(messages)
    system = messages[0] if messages and messages[0].role == "system" else None
    rest = messages[1:] if system is not None else messages
    if turns is not None:
        users = [i for i, m in enumerate(rest) if m.role == "user"]
        keep = turns + 1 if rest and rest[-1].role == "user" else turns
        if len(users) > keep:
            rest = rest[users[-keep] :] if keep else []
    if focus:
        content = f"{system.content.rstrip()} {focus}".strip() if system is not None else focus
        system = replace(system, content=content) if system is not None else ChatMessage("system", content)
    return [system, *rest] if system is not None else rest
