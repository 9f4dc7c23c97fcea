"""Webhook messages: which job status sends which event, the payload, and its HMAC-SHA256 signature.

The receiver checks `VoiceChain-Signature: t=<unix time>,v1=<hex>` where `v1` is
`HMAC-SHA256(secret, f"{t}.{body}")`; the same `t` is inside the JSON body as `timestamp`, so a replayed
old message can be refused by age. `id` is stable across retries of one (job, event): receivers dedupe on it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from pipelines.storage.models import Turn, TurnStatus

SIGNATURE_HEADER = "VoiceChain-Signature"
EVENT_ID_HEADER = "VoiceChain-Event-Id"
DEFAULT_TOLERANCE_S = 300

EVENT_FOR_STATUS = {
    TurnStatus.AWAITING_APPROVAL: "job.awaiting_approval",
    TurnStatus.SUCCEEDED: "job.succeeded",
    TurnStatus.FAILED: "job.failed",
    TurnStatus.REJECTED: "job.rejected",
    TurnStatus.CANCELLED: "job.cancelled",
}


def event_for(turn: Turn) -> str | None:
    return EVENT_FOR_STATUS.get(turn.status)


def event_id(turn_id: str, event: str) -> str:
    return f"evt_{turn_id}_{event.replace('.', '_')}"


def payload(turn: Turn, event: str, timestamp: int) -> dict[str, Any]:
    return {
        "id": event_id(turn.id, event),
        "type": event,
        "timestamp": timestamp,
        "job": {
            "id": turn.id,
            "status": turn.status,
            "conversation_id": turn.conversation_id,
            "agent": turn.agent,
            "transcript": turn.transcript,
            "reply_text": turn.reply_text,
            "spoken_text": turn.spoken_text,
            "error": turn.error,
            "url": f"/v1/jobs/{turn.id}",
        },
    }


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def encode(turn: Turn, event: str, secret: str, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery attempt (signed afresh each attempt, with its own time)."""
    timestamp = int(now if now is not None else time.time())
    body = json.dumps(payload(turn, event, timestamp), separators=(",", ":")).encode()
    return body, {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        EVENT_ID_HEADER: event_id(turn.id, event),
    }


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver does: recompute the MAC, compare in constant time, refuse stale timestamps."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
