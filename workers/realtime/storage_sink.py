"""Persist a realtime conversation with the chained path's tables, readable at `GET /v1/conversations/{id}`.

Each user utterance becomes a `Turn` (`source="realtime"`, no stages): `transcript` is what the user said,
`reply_text` what the model generated, `spoken_text` what the user actually heard (shorter after a
barge-in), and `events` holds tool calls, tool results, handoffs and interruptions. A handoff (an
`agent` record) also sets the conversation's agent, as the chained path does. Writes are idempotent upserts
keyed by realtime item id (`Turn.idempotency_key = "rt:<item id>"`, event `item_id`s).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pipelines.realtime.persistence import Record
from pipelines.storage.database import session_scope
from pipelines.storage.models import Turn, TurnStatus, utcnow
from pipelines.storage.turns import add_turn, find_by_idempotency_key, get_turn, open_conversation


class StorageSink:
    """A `ConversationSink` over `pipelines.storage`; its calls block, the session makes them in a thread."""

    def __init__(self, database_url: str, *, conversation_id: str | None = None) -> None:
        self.url = database_url
        self.conversation_id = conversation_id
        self.owner = "realtime"
        self.agent = "Assistant"
        self._turn_id: str | None = None  # the turn the next assistant reply or tool call belongs to

    def open(self, session_id: str, *, owner: str, agent: str) -> str:
        self.owner, self.agent = owner, agent
        with session_scope(self.url) as db:
            conv = open_conversation(db, owner=owner, agent=agent, conversation_id=self.conversation_id)
            self.conversation_id = conv.id
        return conv.id

    def upsert(self, record: Record) -> None:
        with session_scope(self.url) as db:
            if record.kind == "user":
                turn = self._user_turn(db, record.item_id)
                turn.transcript = record.text
                self._turn_id = turn.id
            else:
                if record.kind == "agent":  # a handoff: this and later turns belong to the new agent
                    self.agent = record.text
                    conv = open_conversation(
                        db, owner=self.owner, agent=self.agent, conversation_id=self.conversation_id
                    )
                    conv.agent = self.agent
                turn = self._current_turn(db)
                if record.kind == "agent":
                    turn.agent = self.agent
                if record.kind == "assistant":
                    if record.data.get("generated") is not None:
                        turn.reply_text = record.data["generated"]
                    turn.spoken_text = record.text
                    if record.data.get("interrupted"):
                        _put_event(
                            turn, record.item_id + ":interruption", {"type": "interruption", **record.data}
                        )
                else:
                    _put_event(
                        turn, record.item_id, {"type": record.kind, "text": record.text, **record.data}
                    )
            turn.status, turn.finished_at = TurnStatus.SUCCEEDED, utcnow()

    def close(self) -> None:
        pass

    def _user_turn(self, db: Session, item_id: str) -> Turn:
        key = "rt:" + item_id
        turn = find_by_idempotency_key(db, self.owner, key)
        if turn is None:
            turn = self._new_turn(db, key)
        return turn

    def _current_turn(self, db: Session) -> Turn:
        if self._turn_id is not None:
            return get_turn(db, self._turn_id)
        turn = self._new_turn(db, None)  # the assistant spoke first (greeting, or a text-only client)
        self._turn_id = turn.id
        return turn

    def _new_turn(self, db: Session, key: str | None) -> Turn:
        assert self.conversation_id is not None, "open() first"
        conv = open_conversation(db, owner=self.owner, agent=self.agent, conversation_id=self.conversation_id)
        return add_turn(
            db,
            conversation=conv,
            owner=self.owner,
            agent=self.agent,
            source="realtime",
            idempotency_key=key,
            stages=(),
        )


def _put_event(turn: Turn, event_id: str, data: dict[str, Any]) -> None:
    """Replace the event with this id or append it; JSON columns need a new list to register the change."""
    events = [e for e in (turn.events or []) if e.get("item_id") != event_id]
    events.append({"item_id": event_id, **data})
    turn.events = events
