"""The conversation history of a session: GA items in order, and what the model sees of them.

An assistant audio item remembers when each of its sentences plays (`Spoken` spans), so a truncation at
`audio_end_ms` keeps exactly the words the user heard: whole sentences before the cut, and the share of
the interrupted sentence's words proportional to the audio of it that played. The unspoken rest never
reaches the history, so it is never fed back to the model or replayed next turn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pipelines.providers.base import ChatMessage
from pipelines.realtime.protocol import ProtocolError


@dataclass(frozen=True)
class Spoken:
    """One sentence of assistant speech and where it sits in the item's audio."""

    text: str
    start_ms: float
    end_ms: float


@dataclass
class Entry:
    item: dict[str, Any]
    spoken: list[Spoken] = field(default_factory=list)

    @property
    def audio_ms(self) -> float:
        return self.spoken[-1].end_ms if self.spoken else 0.0


def heard_text(spoken: list[Spoken], audio_end_ms: float) -> str:
    """The words of `spoken` that played before `audio_end_ms`."""
    words: list[str] = []
    for span in spoken:
        if audio_end_ms >= span.end_ms:
            words.append(span.text)
            continue
        if audio_end_ms > span.start_ms:
            parts = span.text.split()
            share = (audio_end_ms - span.start_ms) / max(1.0, span.end_ms - span.start_ms)
            keep = math.floor(len(parts) * share)
            if keep:
                words.append(" ".join(parts[:keep]))
        break
    return " ".join(w for w in words if w).strip()


def item_text(item: dict[str, Any]) -> str:
    """The text a message item carries (typed text, or the transcript of its audio)."""
    parts = []
    for c in item.get("content") or []:
        text = c.get("text") if c.get("text") is not None else c.get("transcript")
        if text:
            parts.append(text)
    return " ".join(parts).strip()


class Conversation:
    """Ordered items; insertion after a given item as `previous_item_id` asks."""

    def __init__(self) -> None:
        self._entries: list[Entry] = []

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (e.item for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def last_id(self) -> str | None:
        return self._entries[-1].item["id"] if self._entries else None

    def get(self, item_id: str) -> Entry | None:
        return next((e for e in self._entries if e.item["id"] == item_id), None)

    def add(self, item: dict[str, Any], previous_item_id: str | None = None) -> str | None:
        """Insert `item`; return the id of the item before it (what `previous_item_id` reports)."""
        if self.get(item["id"]) is not None:
            raise ProtocolError(f"Item {item['id']!r} already exists.", param="item.id")
        if previous_item_id is None:
            before = self.last_id()
            self._entries.append(Entry(item))
            return before
        if previous_item_id == "root":
            self._entries.insert(0, Entry(item))
            return None
        for i, e in enumerate(self._entries):
            if e.item["id"] == previous_item_id:
                self._entries.insert(i + 1, Entry(item))
                return previous_item_id
        raise ProtocolError(f"previous_item_id {previous_item_id!r} not found.", param="previous_item_id")

    def delete(self, item_id: str) -> None:
        entry = self.get(item_id)
        if entry is None:
            raise ProtocolError(f"Item {item_id!r} not found.", code="item_not_found", param="item_id")
        self._entries.remove(entry)

    def truncate(self, item_id: str, audio_end_ms: int) -> str:
        """Cut an assistant audio item at `audio_end_ms`; return the transcript that was heard."""
        entry = self.get(item_id)
        if entry is None:
            raise ProtocolError(f"Item {item_id!r} not found.", code="item_not_found", param="item_id")
        if entry.item.get("role") != "assistant":
            raise ProtocolError("Only assistant audio items can be truncated.", param="item_id")
        if audio_end_ms > entry.audio_ms + 1:
            raise ProtocolError(
                f"audio_end_ms {audio_end_ms} is past the item's {int(entry.audio_ms)} ms of audio.",
                param="audio_end_ms",
            )
        text = heard_text(entry.spoken, audio_end_ms)
        entry.spoken = _cut(entry.spoken, audio_end_ms)
        for c in entry.item.get("content") or []:
            if c.get("type") == "output_audio":
                c["transcript"] = text
        return text

    def to_messages(self, instructions: str, max_items: int | None = None) -> list[ChatMessage]:
        """The chat the model continues: system instructions, then at most `max_items` recent items as
        messages (a small model's prompt time grows with history, and old turns rarely help it).

        The window moves in steps of half its size rather than one item per turn: a prompt that keeps its
        start from one turn to the next is read from the model's prompt cache, while one that drops an
        item at the front every turn is evaluated in full every turn (a second or more at 12 items)."""
        messages = [ChatMessage(role="system", content=instructions)]
        items = list(self)
        for item in items[_window_start(len(items), max_items) :]:
            kind = item.get("type")
            if kind == "message":
                text = item_text(item)
                if text:
                    messages.append(ChatMessage(role=item["role"], content=text))
            elif kind == "function_call":
                messages.append(
                    ChatMessage(
                        role="assistant", content=f"[called {item['name']}({item.get('arguments', '')})]"
                    )
                )
            elif kind == "function_call_output":
                messages.append(
                    ChatMessage(role="tool", content=item.get("output", ""), tool_call_id=item.get("call_id"))
                )
            elif kind == "mcp_call":  # a tool run here: the call and its output in one item
                messages.append(
                    ChatMessage(
                        role="assistant", content=f"[called {item['name']}({item.get('arguments', '')})]"
                    )
                )
                messages.append(ChatMessage(role="tool", content=mcp_output(item), tool_call_id=item["id"]))
        return messages

    def last_user_text(self) -> str:
        """What the user said last: the latest user message's text, or the output of a tool called since
        (" " if it is empty: a tool that answered is something to respond to)."""
        for item in reversed(list(self)):
            if item.get("type") == "message" and item.get("role") == "user":
                return item_text(item)
            if item.get("type") == "function_call_output":
                return item.get("output") or " "
            if item.get("type") == "mcp_call":
                return mcp_output(item) or " "
        return ""


def mcp_output(item: dict[str, Any]) -> str:
    """What an `mcp_call` item's tool returned, or how it failed."""
    if item.get("error"):
        return f"The tool failed: {item['error'].get('message', '')}"
    return str(item.get("output") or "")


def _window_start(n: int, max_items: int | None) -> int:
    """First item in the window: a multiple of `step`, leaving between max - step and max items."""
    if not max_items or n <= max_items:
        return 0
    step = max(1, max_items // 2)
    return -(-(n - max_items) // step) * step


def _cut(spoken: list[Spoken], audio_end_ms: float) -> list[Spoken]:
    kept = [s for s in spoken if s.start_ms < audio_end_ms]
    if kept and kept[-1].end_ms > audio_end_ms:
        last = kept[-1]
        kept[-1] = Spoken(heard_text([last], audio_end_ms), last.start_ms, audio_end_ms)
    return kept
