"""The durable record of every conversation: the tables, as SQLAlchemy 2 typed models.

A turn is one user utterance and the agent's answer; the HTTP API calls it a *job*. Each stage of the
chain writes one `StageRun` row keyed by (turn, stage), which is what makes a redelivered task a no-op
and lets a sweeper find turns that stalled between stages.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """Readable, sortable-enough ids: the prefix tells a job id from a conversation id in logs."""
    return f"{prefix}_{uuid.uuid4().hex}"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on every backend: SQLite stores no offset, so values come back naive as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class TurnStatus:
    """Turn (job) states. `awaiting_approval` and `cancelled` are used by the review and cancel flows."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # a reviewer refused the proposed reply; nothing was spoken
    FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, REJECTED})


class StageStatus:
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"  # it was running when its turn was cancelled; nothing of it was kept


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("conv"))
    owner: Mapped[str] = mapped_column(String(128), index=True)
    agent: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    turns: Mapped[list[Turn]] = relationship(
        back_populates="conversation", order_by="Turn.seq", cascade="all, delete-orphan"
    )


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_turn_conversation_seq"),
        UniqueConstraint("owner", "idempotency_key", name="uq_turn_owner_idempotency_key"),
        Index("ix_turn_status_updated", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("job"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(16), default="batch")  # batch | realtime
    agent: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32), default=TurnStatus.QUEUED)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)

    transcript: Mapped[str | None] = mapped_column(Text, nullable=True)
    reply_text: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the agent proposed
    spoken_text: Mapped[str | None] = mapped_column(Text, nullable=True)  # what policy let through
    policy_verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)
    policy_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)  # tool calls, handoffs, interruptions
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Receives a signed POST when the job needs approval and when it ends (see `workers.webhooks`).
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: When the chain message for the current stage was last published; the sweeper compares against it.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    conversation: Mapped[Conversation] = relationship(back_populates="turns")
    stages: Mapped[list[StageRun]] = relationship(
        back_populates="turn", order_by="StageRun.position", cascade="all, delete-orphan"
    )
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="turn", cascade="all, delete-orphan")
    webhooks: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="turn", order_by="WebhookDelivery.id", cascade="all, delete-orphan"
    )


class StageRun(Base):
    __tablename__ = "stage_runs"
    __table_args__ = (UniqueConstraint("turn_id", "stage", name="uq_stage_run_turn_stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[str] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=StageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    turn: Mapped[Turn] = relationship(back_populates="stages")


class Artifact(Base):
    """An audio file in the artifact store; the row holds its path, never its bytes."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("turn_id", "kind", name="uq_artifact_turn_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[str] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # input_audio | output_audio
    path: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(64))
    sample_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    turn: Mapped[Turn] = relationship(back_populates="artifacts")


class WebhookDeliveryStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed


class WebhookDelivery(Base):
    """One event of one job sent to its callback URL. Unique per (turn, event): a redelivered task or a
    second notify finds the row and sends nothing twice. `attempts` lists every try, for the job view."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("turn_id", "event", name="uq_webhook_delivery_turn_event"),
        Index("ix_webhook_delivery_unpublished", "status", "enqueued_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[str] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), default=WebhookDeliveryStatus.PENDING)
    attempts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When its task was published; null: the publish failed (or has not happened yet), the sweeper re-sends.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    turn: Mapped[Turn] = relationship(back_populates="webhooks")


class ApiKey(Base):
    """A key of the HTTP API and the realtime pool. Only the SHA-256 of the key is stored: the key is
    256 random bits, so a fast hash is enough and lookups stay a single indexed read. The key's id is the
    *owner* of what it creates, so revoking and re-issuing a key does not hand its jobs to another."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("ak"))
    name: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Requests a minute through the API; null: the deployment's default.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Realtime sessions open at once; null: the deployment's default.
    max_realtime_sessions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
