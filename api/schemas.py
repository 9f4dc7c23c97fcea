"""Response documents of the HTTP API (these become the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from pipelines.storage.models import Conversation, StageRun, Turn, WebhookDelivery
from pipelines.storage.turns import artifact


class StageDocument(BaseModel):
    name: str
    queue: str
    status: str
    attempts: int
    provider: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    error: str | None

    @classmethod
    def of(cls, run: StageRun) -> StageDocument:
        return cls(
            name=run.stage,
            queue=run.queue,
            status=run.status,
            attempts=run.attempts,
            provider=run.provider,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_ms=run.duration_ms,
            error=run.error,
        )


class WebhookDocument(BaseModel):
    event: str
    url: str
    status: str
    attempts: list[dict[str, Any]]
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> WebhookDocument:
        return cls(
            event=delivery.event,
            url=delivery.url,
            status=delivery.status,
            attempts=list(delivery.attempts or []),
            delivered_at=delivery.delivered_at,
        )


class PolicyDocument(BaseModel):
    verdict: str | None
    reasons: list[str]


class JobDocument(BaseModel):
    id: str
    status: str
    conversation_id: str
    agent: str
    transcript: str | None
    reply_text: str | None
    spoken_text: str | None
    policy: PolicyDocument
    stages: list[StageDocument]
    events: list[dict[str, Any]]
    webhooks: list[WebhookDocument] = []
    error: str | None
    audio_url: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, turn: Turn) -> JobDocument:
        has_audio = artifact(turn, "output_audio") is not None
        return cls(
            id=turn.id,
            status=turn.status,
            conversation_id=turn.conversation_id,
            agent=turn.agent,
            transcript=turn.transcript,
            reply_text=turn.reply_text,
            spoken_text=turn.spoken_text,
            policy=PolicyDocument(verdict=turn.policy_verdict, reasons=list(turn.policy_reasons or [])),
            stages=[StageDocument.of(run) for run in turn.stages],
            events=list(turn.events or []),
            webhooks=[WebhookDocument.of(d) for d in turn.webhooks],
            error=turn.error,
            audio_url=f"/v1/jobs/{turn.id}/audio" if has_audio else None,
            created_at=turn.created_at,
            finished_at=turn.finished_at,
        )


class TurnSummary(BaseModel):
    id: str
    seq: int
    source: str
    status: str
    agent: str
    transcript: str | None
    reply_text: str | None
    spoken_text: str | None
    policy_verdict: str | None
    events: list[dict[str, Any]]
    created_at: datetime

    @classmethod
    def of(cls, turn: Turn) -> TurnSummary:
        return cls(
            id=turn.id,
            seq=turn.seq,
            source=turn.source,
            status=turn.status,
            agent=turn.agent,
            transcript=turn.transcript,
            reply_text=turn.reply_text,
            spoken_text=turn.spoken_text,
            policy_verdict=turn.policy_verdict,
            events=list(turn.events or []),
            created_at=turn.created_at,
        )


class ConversationDocument(BaseModel):
    id: str
    agent: str
    created_at: datetime
    turns: list[TurnSummary]

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationDocument:
        return cls(
            id=conversation.id,
            agent=conversation.agent,
            created_at=conversation.created_at,
            turns=[TurnSummary.of(t) for t in conversation.turns],
        )
