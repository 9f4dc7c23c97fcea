"""Structured logs: one JSON object a line, carrying the ids of what is being worked on.

Ids live in context variables (`job_id`, `conversation_id`, `session_id`, `stage`, `request_id`), set
with `log_context(...)`/`bind(...)` at the edges: the API request, a Celery task (restored from the
task's headers), a realtime session. Every record made inside carries them, in JSON or text format.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

FIELDS = ("request_id", "job_id", "conversation_id", "session_id", "stage", "trace_id")
_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("voicechain_log", default=_EMPTY)


def current() -> dict[str, str]:
    """The ids bound now (a copy)."""
    return dict(_context.get())


def bind(**fields: Any) -> contextvars.Token[Mapping[str, str]]:
    """Add ids to the current context; returns a token for `unbind`."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    return _context.set(MappingProxyType(merged))


def unbind(token: contextvars.Token[Mapping[str, str]]) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copies the bound ids onto every record, so any formatter can use them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the bound ids and any `extra=` fields."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            event["service"] = self.service
        event["pid"] = record.process
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                event[key] = value
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(fmt: str = "text", level: str = "INFO", service: str | None = None) -> None:
    """Replace the root logger's handlers with one stderr handler in `fmt` (`json` or `text`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
