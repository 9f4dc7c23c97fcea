"""Webhook delivery as a Celery task on its own queue, so a slow receiver never holds a stage worker.

Retry policy, stated here: any non-2xx answer, timeout or connection error is retried with exponential
backoff (1, 2, 4, 8 ... s, capped at 5 min, with jitter) up to `webhook_max_attempts` attempts; then the
delivery is marked failed. Every attempt is recorded on the delivery row and shown on the job.
Exactly one delivery per (job, event): the row is created once (unique constraint) and only its creator
sends the task; a redelivered task finds the row no longer pending and sends nothing.
The row is the outbox: it is committed before the task is published and `enqueued_at` is set only once
the publish succeeded, so a delivery whose publish failed (broker down) is re-sent by the sweeper.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

import httpx
from celery import Task
from sqlalchemy import select

from pipelines import webhooks
from pipelines.settings import WEBHOOK_QUEUE, Settings, get_settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import WebhookDelivery, WebhookDeliveryStatus, utcnow
from pipelines.storage.turns import get_turn
from pipelines.storage.webhooks import ensure_delivery, record_attempt
from workers.celery_app import app

log = logging.getLogger(__name__)
TASK_NAME = "voicechain.webhook.deliver"
#: A delivery row this old with no successful publish is re-sent (a publish retries for a few seconds).
UNPUBLISHED_AFTER_S = 15.0


def backoff_s(retries: int) -> float:
    return min(300.0, 2.0**retries) * random.uniform(0.8, 1.2)


def notify(settings: Settings, turn_id: str) -> bool:
    """Queue the webhook for the turn's current status, once. Returns True if a delivery was queued."""
    with session_scope(settings.resolved_database_url) as session:
        turn = get_turn(session, turn_id)
        event = webhooks.event_for(turn)
        if not turn.callback_url or event is None:
            return False
        delivery = ensure_delivery(session, turn_id=turn.id, event=event, url=turn.callback_url)
        if delivery is None:
            return False
        delivery_id = delivery.id
    if not _publish(settings, delivery_id):
        log.warning("could not queue webhook %s for %s; the sweeper will re-send it", event, turn_id)
        return False
    return True


def _publish(settings: Settings, delivery_id: int) -> bool:
    """Send the delivery task and record that it was sent; False (row left unpublished) on failure."""
    try:
        deliver_task.apply_async(args=(delivery_id,), retry=True, retry_policy={"max_retries": 2})
    except Exception as exc:  # kombu raises several families; the sweeper re-sends in every case
        log.warning("could not publish webhook delivery %s: %s", delivery_id, exc)
        return False
    with session_scope(settings.resolved_database_url) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is not None:
            delivery.enqueued_at = utcnow()
    return True


def resend_unpublished(settings: Settings, *, limit: int = 100) -> list[int]:
    """Publish the pending deliveries whose task was never sent (the sweeper calls this)."""
    cutoff = utcnow() - timedelta(seconds=UNPUBLISHED_AFTER_S)
    with session_scope(settings.resolved_database_url) as session:
        ids = list(
            session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
                    WebhookDelivery.enqueued_at.is_(None),
                    WebhookDelivery.created_at < cutoff,
                )
                .order_by(WebhookDelivery.id)
                .limit(limit)
            ).all()
        )
    sent = [delivery_id for delivery_id in ids if _publish(settings, delivery_id)]
    if sent:
        log.warning("re-sent %d webhook deliveries whose publish had failed", len(sent))
    return sent


def attempt(settings: Settings, delivery_id: int, *, final: bool) -> str:
    """One POST; returns the delivery's status afterwards (`pending` means try again)."""
    if not settings.webhook_secret:
        raise RuntimeError("VOICECHAIN_WEBHOOK_SECRET is not set; cannot sign webhooks")
    with session_scope(settings.resolved_database_url) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status != WebhookDeliveryStatus.PENDING:
            return delivery.status if delivery else "missing"
        body, headers = webhooks.encode(delivery.turn, delivery.event, settings.webhook_secret)
        url = delivery.url
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=settings.webhook_timeout_s)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    with session_scope(settings.resolved_database_url) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        record_attempt(delivery, status_code=status_code, error=error, duration_ms=duration_ms, final=final)
        return delivery.status


@app.task(bind=True, name=TASK_NAME, queue=WEBHOOK_QUEUE, max_retries=None)
def deliver_task(self: Task, delivery_id: int) -> str:
    """POST one signed webhook; retried with backoff until delivered or out of attempts."""
    settings = get_settings()
    final = self.request.retries + 1 >= settings.webhook_max_attempts
    status = attempt(settings, delivery_id, final=final)
    if status == WebhookDeliveryStatus.PENDING:
        raise self.retry(countdown=backoff_s(self.request.retries))
    return status
