"""Where a session's conversation is recorded: one small interface, so the domain never imports storage.

Records are upserts keyed by item id: an assistant reply is recorded when it ends and recorded again if a
later `conversation.item.truncate` shortens what was heard, so the stored text is always what the user heard.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pipelines.realtime.conversation import item_text
from pipelines.realtime.protocol import new_id

if TYPE_CHECKING:
    from pipelines.realtime.response import Outcome

log = logging.getLogger(__name__)

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


def record_of(item: dict[str, Any]) -> Record | None:
    """The record of a conversation item added by the client or a server tool (not a spoken turn)."""
    kind = item.get("type")
    if kind == "message":
        role: RecordKind = "assistant" if item.get("role") == "assistant" else "user"
        return Record(role, item["id"], item_text(item))
    if kind == "function_call":
        fields = {k: item.get(k) for k in ("name", "call_id", "arguments")}
        return Record("function_call", item["id"], "", fields)
    if kind == "function_call_output":
        return Record(
            "function_call_output", item["id"], item.get("output", ""), {"call_id": item["call_id"]}
        )
    return None


def outcome_records(outcome: Outcome) -> list[Record]:
    """The records of a finished response: its reply (what was heard, and all that was generated), the
    guardrail that replaced it, the calls it made, and the outputs of those it ran here."""
    records: list[Record] = []
    if outcome.item_id is not None:
        data = {
            "generated": outcome.text,
            "interrupted": outcome.status == "cancelled",
            "reason": outcome.reason,
            "response_id": outcome.response_id,
            "status": outcome.status,
        }
        records.append(Record("assistant", outcome.item_id, outcome.heard, data))
    if (g := outcome.guardrail) is not None:
        records.append(
            Record("guardrail", new_id("item"), g.message, {"kind": g.kind, "name": g.name, "agent": g.agent})
        )
    for call in outcome.calls:
        fields = {k: call[k] for k in ("name", "call_id", "arguments")}
        records.append(Record("function_call", call["id"], "", fields))
        if call.get("type") == "mcp_call":  # run here: its output is part of the response
            output = str(call.get("output") or "")
            records.append(
                Record("function_call_output", call["id"] + ":output", output, {"call_id": call["id"]})
            )
    return records


class RecordWriter:
    """A session's records, written one at a time in the order they were made, off the event loop.

    Order matters: the sink files an assistant reply under the user turn written before it, so writes
    racing in parallel threads could file a reply under the wrong turn. `close` waits for what is queued,
    so the last words of a session that ends right after its reply are still stored.
    """

    def __init__(self, sink: ConversationSink) -> None:
        self.sink = sink
        self._queue: asyncio.Queue[Record | asyncio.Future[None] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def put(self, record: Record) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        self._queue.put_nowait(record)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every record put so far is written (True), or `timeout_s` passed (False).

        A reply is flushed before its `response.done` goes out, so a client that saw a reply finish can
        count on finding it in the stored conversation even if the process dies right after."""
        if self._task is None:
            return True
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(marker)
        try:
            await asyncio.wait_for(asyncio.shield(marker), timeout_s)
        except TimeoutError:
            log.error("conversation records not written within %.0f s", timeout_s)
            return False
        return True

    async def _run(self) -> None:
        while (record := await self._queue.get()) is not None:
            if isinstance(record, asyncio.Future):
                if not record.done():
                    record.set_result(None)
                continue
            try:
                await asyncio.to_thread(self.sink.upsert, record)
            except Exception:  # storage trouble must not end a live conversation
                log.exception("could not persist %s %s", record.kind, record.item_id)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (for at most `timeout_s`), then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            log.error("%d conversation records not written within %.0f s", self._queue.qsize(), timeout_s)
            self._task.cancel()
