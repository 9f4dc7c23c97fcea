"""Storage rules on SQLite and PostgreSQL: ordering, idempotency keys, per-stage upserts, stall detection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pipelines.storage.database import session_scope
from pipelines.storage.models import Artifact, StageStatus, Turn, TurnStatus, utcnow
from pipelines.storage.turns import (
    NotFound,
    add_artifact,
    add_turn,
    first_unfinished_stage,
    get_conversation,
    get_turn,
    history,
    open_conversation,
    stage_run,
    stalled_turns,
)


def new_turn(
    url: str, owner: str = "owner-a", conversation_id: str | None = None, key: str | None = None
) -> str:
    with session_scope(url) as session:
        conversation = open_conversation(
            session, owner=owner, agent="Assistant", conversation_id=conversation_id
        )
        return add_turn(session, conversation=conversation, owner=owner, agent=None, idempotency_key=key).id


def test_turns_are_numbered_in_order_and_history_holds_finished_exchanges(database_url: str) -> None:
    first = new_turn(database_url)
    with session_scope(database_url) as session:
        turn = get_turn(session, first)
        turn.transcript, turn.spoken_text = "hello", "hi there."
        conversation_id = turn.conversation_id
    second = new_turn(database_url, conversation_id=conversation_id)
    third = new_turn(database_url, conversation_id=conversation_id)
    with session_scope(database_url) as session:
        assert [t.seq for t in get_conversation(session, conversation_id).turns] == [1, 2, 3]
        past = history(session, get_turn(session, third))
        assert [(h.user, h.assistant) for h in past] == [
            ("hello", "hi there.")
        ]  # turn 2 unfinished: left out
        assert get_turn(session, second).stages[0].stage == "stt"


def test_other_owners_cannot_see_or_continue_a_conversation(database_url: str) -> None:
    turn_id = new_turn(database_url, owner="owner-a")
    with session_scope(database_url) as session:
        conversation_id = get_turn(session, turn_id).conversation_id
        with pytest.raises(NotFound):
            get_turn(session, turn_id, owner="owner-b")
        with pytest.raises(NotFound):
            open_conversation(session, owner="owner-b", agent="Assistant", conversation_id=conversation_id)


def test_idempotency_key_is_unique_per_owner(database_url: str) -> None:
    new_turn(database_url, owner="owner-a", key="same-key")
    new_turn(database_url, owner="owner-b", key="same-key")  # another owner may reuse it
    with pytest.raises(IntegrityError):
        new_turn(database_url, owner="owner-a", key="same-key")


def test_artifacts_and_stage_runs_are_one_row_per_key(database_url: str) -> None:
    turn_id = new_turn(database_url)
    for digest in ("a" * 64, "b" * 64):  # a redelivered stage writes its artifact again
        with session_scope(database_url) as session:
            add_artifact(
                session,
                get_turn(session, turn_id),
                kind="output_audio",
                path=f"{turn_id}/reply.wav",
                content_type="audio/wav",
                size_bytes=10,
                sha256=digest,
            )
    with session_scope(database_url) as session:
        rows = session.scalars(select(Artifact).where(Artifact.turn_id == turn_id)).all()
        assert [r.sha256 for r in rows] == ["b" * 64]
        turn = get_turn(session, turn_id)
        assert [s.stage for s in turn.stages] == ["stt", "agent", "policy", "tts"]
        stage_run(turn, "stt").status = StageStatus.SUCCEEDED
        assert first_unfinished_stage(turn) == "agent"


def test_stalled_turns_are_found_by_age(database_url: str) -> None:
    turn_id = new_turn(database_url)
    with session_scope(database_url) as session:
        assert turn_id not in {t.id for t in stalled_turns(session, older_than=timedelta(seconds=60))}
        turn = get_turn(session, turn_id)
        old = utcnow() - timedelta(minutes=5)
        turn.created_at = turn.updated_at = turn.enqueued_at = old
    with session_scope(database_url) as session:
        # updated_at has onupdate; set it back explicitly after the flush above
        session.execute(Turn.__table__.update().where(Turn.id == turn_id).values(updated_at=old))
    with session_scope(database_url) as session:
        found = {t.id for t in stalled_turns(session, older_than=timedelta(seconds=60))}
        assert turn_id in found
        get_turn(session, turn_id).status = TurnStatus.SUCCEEDED
    with session_scope(database_url) as session:
        assert turn_id not in {t.id for t in stalled_turns(session, older_than=timedelta(seconds=60))}
