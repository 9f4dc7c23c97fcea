"""Queries and state changes on turns (jobs) and their stage runs.

Every write that a stage makes goes through here, so the rules that keep the chain idempotent live in
one place: a stage that already succeeded is never run again, and a turn in a final state is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from pipelines.settings import STAGES
from pipelines.storage.models import (
    Artifact,
    Conversation,
    StageRun,
    StageStatus,
    Turn,
    TurnStatus,
    utcnow,
)


class NotFound(LookupError):
    """The id does not exist, or belongs to another owner (callers must not tell the two apart)."""


@dataclass(frozen=True)
class HistoryEntry:
    user: str
    assistant: str


def get_turn(session: Session, turn_id: str, *, owner: str | None = None) -> Turn:
    turn = session.scalar(
        select(Turn)
        .where(Turn.id == turn_id)
        .options(selectinload(Turn.stages), selectinload(Turn.artifacts))
    )
    if turn is None or (owner is not None and turn.owner != owner):
        raise NotFound(turn_id)
    return turn


def get_conversation(session: Session, conversation_id: str, *, owner: str | None = None) -> Conversation:
    conversation = session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .options(selectinload(Conversation.turns).selectinload(Turn.stages))
    )
    if conversation is None or (owner is not None and conversation.owner != owner):
        raise NotFound(conversation_id)
    return conversation


def find_by_idempotency_key(session: Session, owner: str, key: str) -> Turn | None:
    return session.scalar(select(Turn).where(Turn.owner == owner, Turn.idempotency_key == key))


def open_conversation(
    session: Session, *, owner: str, agent: str, conversation_id: str | None
) -> Conversation:
    """Continue the caller's conversation, or start one; someone else's id is treated as unknown."""
    if conversation_id is None:
        conversation = Conversation(owner=owner, agent=agent)
        session.add(conversation)
        session.flush()
        return conversation
    return get_conversation(session, conversation_id, owner=owner)


def next_seq(session: Session, conversation_id: str) -> int:
    current = session.scalar(select(func.max(Turn.seq)).where(Turn.conversation_id == conversation_id))
    return (current or 0) + 1


def add_turn(
    session: Session,
    *,
    conversation: Conversation,
    owner: str,
    agent: str | None,
    source: str = "batch",
    idempotency_key: str | None = None,
    stages: tuple[str, ...] = STAGES,
) -> Turn:
    """Insert a queued turn with one pending stage row per stage, so progress is visible at once."""
    turn = Turn(
        conversation_id=conversation.id,
        seq=next_seq(session, conversation.id),
        owner=owner,
        source=source,
        agent=agent or conversation.agent,
        idempotency_key=idempotency_key,
        status=TurnStatus.QUEUED,
        policy_reasons=[],
        events=[],
    )
    turn.stages = [StageRun(stage=name, position=i, queue=name, output={}) for i, name in enumerate(stages)]
    session.add(turn)
    session.flush()
    return turn


def add_artifact(session: Session, turn: Turn, *, kind: str, **fields: Any) -> Artifact:
    """Upsert by (turn, kind): a redelivered stage replaces its own artifact row instead of adding one."""
    existing = session.scalar(select(Artifact).where(Artifact.turn_id == turn.id, Artifact.kind == kind))
    if existing is None:
        existing = Artifact(turn_id=turn.id, kind=kind, **fields)
        session.add(existing)
    else:
        for name, value in fields.items():
            setattr(existing, name, value)
    session.flush()
    return existing


def artifact(turn: Turn, kind: str) -> Artifact | None:
    return next((a for a in turn.artifacts if a.kind == kind), None)


def stage_run(turn: Turn, stage: str) -> StageRun:
    for run in turn.stages:
        if run.stage == stage:
            return run
    raise NotFound(f"{turn.id}/{stage}")


def history(session: Session, turn: Turn, *, limit: int = 20) -> list[HistoryEntry]:
    """Earlier finished exchanges of the conversation, oldest first, as the agent should remember them."""
    rows = session.scalars(
        select(Turn)
        .where(
            Turn.conversation_id == turn.conversation_id,
            Turn.seq < turn.seq,
            Turn.transcript.is_not(None),
            Turn.spoken_text.is_not(None),
        )
        .order_by(Turn.seq.desc())
        .limit(limit)
    ).all()
    return [HistoryEntry(user=t.transcript or "", assistant=t.spoken_text or "") for t in reversed(rows)]


def mark_enqueued(session: Session, turn: Turn, at: datetime) -> None:
    """Record `at`, taken before the message was sent: a worker can start the stage before the
    publisher gets here, and the sweeper reads a stage started before `enqueued_at` as the run of an
    older message, left to the slow stall rule."""
    turn.enqueued_at = at


def stalled_turns(session: Session, *, older_than: timedelta, limit: int = 100) -> list[Turn]:
    """Queued or running turns whose last publish is older than `older_than`: their message may be lost."""
    cutoff = utcnow() - older_than
    return list(
        session.scalars(
            select(Turn)
            .where(
                Turn.status.in_([TurnStatus.QUEUED, TurnStatus.RUNNING]),
                func.coalesce(Turn.enqueued_at, Turn.created_at) < cutoff,
                Turn.updated_at < cutoff,
            )
            .options(selectinload(Turn.stages))
            .order_by(Turn.created_at)
            .limit(limit)
        ).all()
    )


def turns_running_a_stage(session: Session, *, started_before: datetime, limit: int = 100) -> list[Turn]:
    """Open turns with a stage marked running since before `started_before`: candidates for the
    liveness check (the sweeper asks Redis whether anybody still runs them)."""
    return list(
        session.scalars(
            select(Turn)
            .where(
                Turn.status.in_([TurnStatus.QUEUED, TurnStatus.RUNNING]),
                Turn.id.in_(
                    select(StageRun.turn_id).where(
                        StageRun.status == StageStatus.RUNNING, StageRun.started_at < started_before
                    )
                ),
            )
            .options(selectinload(Turn.stages))
            .order_by(Turn.created_at)
            .limit(limit)
        ).all()
    )


def first_unfinished_stage(turn: Turn) -> str | None:
    for run in turn.stages:
        if run.status not in (StageStatus.SUCCEEDED, StageStatus.SKIPPED):
            return run.stage
    return None


def is_integrity_error(exc: BaseException) -> bool:
    return isinstance(exc, IntegrityError)


def elapsed_ms(started: datetime | None, finished: datetime) -> float | None:
    if started is None:
        return None
    return round((finished - started).total_seconds() * 1000, 1)
