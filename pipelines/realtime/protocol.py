"""The wire protocol: parse client events and build server events of the OpenAI Realtime GA API.

The authority is `openai.types.realtime`: client events are validated with those pydantic models (so a
malformed event becomes an `error` event naming the bad field), and server events are plain dicts built
here in exactly the shapes those models describe (tests validate every one of them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_args

from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import BaseModel, ValidationError

#: How a session's parts send a server event to the client (a JSON-ready dict in, awaited).
Emit = Callable[[dict[str, Any]], Awaitable[None]]


def new_id(prefix: str) -> str:
    """OpenAI-style ids (`item_...`, `resp_...`, `event_...`): clients log them, some parse the prefix."""
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


def _models_by_type(union: Any) -> dict[str, type[BaseModel]]:
    """Map each `type` literal of a discriminated union of event models to its model class."""
    members = get_args(get_args(union)[0]) if get_args(union) else ()
    out: dict[str, type[BaseModel]] = {}
    for model in members:
        literal = model.model_fields["type"].annotation
        for value in get_args(literal):
            out[value] = model
    return out


CLIENT_EVENT_MODELS: dict[str, type[BaseModel]] = _models_by_type(RealtimeClientEvent)
SERVER_EVENT_MODELS: dict[str, type[BaseModel]] = _models_by_type(RealtimeServerEvent)

#: Client events this server implements; the others parse but get an `error` saying so.
HANDLED_CLIENT_EVENTS = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.truncate",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)


@dataclass
class ProtocolError(Exception):
    """A client mistake: reported as an `error` event, after which the session carries on."""

    message: str
    code: str = "invalid_request_error"
    event_id: str | None = None
    param: str | None = None
    type: str = "invalid_request_error"

    def __str__(self) -> str:
        return self.message


def parse_client_event(raw: str | bytes) -> BaseModel:
    """Decode and validate one client event; raise `ProtocolError` with a precise message if it is bad."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"Event is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise ProtocolError("Event must be a JSON object.", code="invalid_event")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data.get("type")
    model = CLIENT_EVENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None or kind not in HANDLED_CLIENT_EVENTS:
        raise ProtocolError(
            f"Unknown or unsupported event type: {kind!r}.",
            code="unknown_event",
            event_id=event_id,
            param="type",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ()))
        raise ProtocolError(
            f"Invalid '{kind}' event: {param}: {first.get('msg')}", event_id=event_id, param=param or None
        ) from exc


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A server event dict with a fresh `event_id`."""
    return {"type": kind, "event_id": new_id("event"), **fields}


def error_event(err: ProtocolError) -> dict[str, Any]:
    return event(
        "error",
        error={
            "type": err.type,
            "code": err.code,
            "message": err.message,
            "param": err.param,
            "event_id": err.event_id,
        },
    )


def validate_server_event(data: dict[str, Any]) -> BaseModel:
    """Validate a server event against the GA model of its type (used by tests and debug mode)."""
    model = SERVER_EVENT_MODELS[data["type"]]
    return model.model_validate(data)
