"""Where a session's conversation is recorded: one small interface, so the domain never imports storage.

Records are upserts keyed by item id: an assistant reply is recorded when it ends and recorded again if a
later `conversation.item.truncate` shortens what was heard, so the stored text is always what the user heard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

RecordKind = Literal["user", "assistant", "function_call", "function_call_output", "agent", "guardrail"]


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    item_id: str
    text: str = ""
    #: assistant: `generated` (the full reply), `interrupted`, `response_id`, `status`; function calls:
    #: `name`, `call_id`, `arguments`; outputs: `call_id`; agent (a handoff; `text` is the new agent's
    #: name): `from`, `to`; guardrail (`text` is the message said instead): `kind`, `name`, `agent`.
    data: dict[str, Any] = field(default_factory=dict)


class ConversationSink(Protocol):
    """Blocking calls, made from a worker thread; implementations must not raise on duplicates."""

    def open(self, session_id: str, *, owner: str, agent: str) -> str:
        """Start (or resume) the stored conversation of this session; return its id."""
        ...

    def upsert(self, record: Record) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps records in memory: the default when no database is configured, and a test double."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.conversation_id: str | None = None
        self.closed = False

    def open(self, session_id: str, *, owner: str, agent: str) -> str:
        self.conversation_id = f"conv_{session_id}"
        return self.conversation_id

    def upsert(self, record: Record) -> None:
        self.records[record.item_id] = record

    def close(self) -> None:
        self.closed = True
