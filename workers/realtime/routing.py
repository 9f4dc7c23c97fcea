"""Where a new realtime connection should go: the pool processes that can take it, in order.

The API-origin gateway (`api/routes/realtime_gateway.py`) asks this module, so the routing rules live
next to the registry that publishes the load:

- a new session goes to the least loaded process with room (draining and full ones are skipped by
  `registry.workers`); the caller tries the next one if a process refuses with 503 or cannot be reached
  (its registry hash may be up to one heartbeat stale);
- a side-band connection for a WebRTC call (`?call_id=rtc_...`) goes to the one process that holds that
  call: `voicechain:realtime:call:<rtc_id>` names its worker id, whose hash gives its address.

Each hash's `port` is the port that reaches *that* process (with several processes on one
`SO_REUSEPORT` port, each also listens on a private port of its own; see `workers.realtime.server`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.realtime.registry import PREFIX, workers

#: `voicechain:realtime:call:<rtc_id>` = the worker id of the process holding the call (set by it).
CALL_PREFIX = "voicechain:realtime:call:"


@dataclass(frozen=True)
class Target:
    """One pool process: its worker id and the address that reaches it."""

    worker: str
    host: str
    port: int

    def ws_url(self, query: str) -> str:
        return f"ws://{url_host(self.host)}:{self.port}/v1/realtime" + (f"?{query}" if query else "")


def url_host(host: str) -> str:
    """A registry host as it goes in a URL: reachable (see `_connect_host`), IPv6 literals bracketed."""
    host = _connect_host(host)
    return f"[{host}]" if ":" in host else host


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _connect_host(host: str) -> str:
    """A wildcard in the registry (a process from before `advertised_host`) is tried on loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _target(row: dict[str, Any]) -> Target:
    return Target(worker=str(row["id"]), host=_connect_host(str(row["host"])), port=int(row["port"]))


async def session_targets(redis: Any) -> list[Target]:
    """Processes with room for a new session, least loaded first; empty when none has room."""
    return [_target(row) for row in await workers(redis)]


async def call_target(redis: Any, call_id: str) -> Target | None:
    """The process holding WebRTC call `call_id`, or None if no live process holds it."""
    if not call_id or len(call_id) > 200:
        return None
    worker = await redis.get(CALL_PREFIX + call_id)
    if worker is None:
        return None
    worker_id = _text(worker)
    data = await redis.hgetall(PREFIX + worker_id)
    if not data:
        return None  # the process died; its call key outlives it until the TTL
    row = {_text(k): _text(v) for k, v in data.items()}
    return _target({**row, "id": worker_id})
