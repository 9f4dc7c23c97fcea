"""Webhook delivery rows: one per (turn, event), created once, each attempt appended."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipelines.storage.models import WebhookDelivery, WebhookDeliveryStatus, utcnow


def ensure_delivery(session: Session, *, turn_id: str, event: str, url: str) -> WebhookDelivery | None:
    """Create the delivery row; None if it already existed (the event was already handed to a task)."""
    existing = session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.turn_id == turn_id, WebhookDelivery.event == event)
    )
    if existing is not None:
        return None
    delivery = WebhookDelivery(turn_id=turn_id, event=event, url=url, attempts=[])
    try:
        with session.begin_nested():
            session.add(delivery)
            session.flush()
    except IntegrityError:  # a concurrent notify won the race
        return None
    return delivery


def record_attempt(
    delivery: WebhookDelivery, *, status_code: int | None, error: str | None, duration_ms: float, final: bool
) -> None:
    attempt: dict[str, Any] = {
        "at": utcnow().isoformat(),
        "status_code": status_code,
        "error": error,
        "duration_ms": duration_ms,
    }
    delivery.attempts = [*(delivery.attempts or []), attempt]
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at = WebhookDeliveryStatus.DELIVERED, utcnow()
    elif final:
        delivery.status = WebhookDeliveryStatus.FAILED
