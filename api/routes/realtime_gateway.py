"""`WS /v1/realtime` on the API origin: a frame relay to the realtime pool.

OpenAI's clients derive the realtime URL from `base_url` (`AsyncOpenAI(base_url=".../v1")` connects to
`ws://<same origin>/v1/realtime`), so the API must answer there; the sessions themselves run in the
pool. This route picks a pool process (`workers.realtime.routing`: the least loaded one with room, or with
`?call_id=rtc_...` the one holding that WebRTC call), opens the same URL on it, and relays frames both
ways until either side closes.

Auth is decided in one place, the pool: the client's credential (the `Authorization` header, or the
browser subprotocols `realtime` + `openai-insecure-api-key.<key>`) is forwarded as received, and the
pool's refusal (401 bad or used secret, 429 per-key cap, 503 full) is relayed to the client as the HTTP
status of the upgrade, with an OpenAI-shaped JSON error body. Only when no process has room, or none can
be reached, does the API answer itself: 503 with `Retry-After`. A 503 or an unreachable process is
retried on the next candidate (the registry may be one heartbeat stale); nothing else is, because the
pool has looked at the credential by then and an `ek_` secret is single use.

The relay is deliberately dumb: frames pass as they came (text stays text, no JSON parsing), and each
direction awaits its send before reading the next frame, so at most one frame per direction is held
here beyond the two WebSocket libraries' own bounded queues: a slow reader slows the writer down instead
of growing memory. Close codes and reasons pass through both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
import websockets
from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from api.errors import error_body
from pipelines.settings import Settings
from workers.celery_app import DEFAULT_BROKER
from workers.realtime.routing import Target, call_target, session_targets

log = logging.getLogger(__name__)
router = APIRouter(tags=["realtime"])

#: Largest frame relayed from the pool (its own cap on client frames is 4 MiB; its events are smaller).
MAX_FRAME_BYTES = 16 << 20
OPEN_TIMEOUT_S = 10.0
#: Close codes that may not be sent in a close frame (RFC 6455 7.4.1), and what is sent instead.
_RESERVED = {1005: 1000, 1006: 1011, 1015: 1011}


def _redis(ws: WebSocket) -> aioredis.Redis:
    """One client per app, made on first use (the API has no lifespan hook for it)."""
    client = getattr(ws.app.state, "gateway_redis", None)
    if client is None:
        settings: Settings = ws.app.state.settings
        client = aioredis.Redis.from_url(settings.redis_url or DEFAULT_BROKER, socket_timeout=5)
        ws.app.state.gateway_redis = client
    return client


@router.websocket("/v1/realtime")
async def realtime_gateway(ws: WebSocket) -> None:
    """The realtime pool's WebSocket, on the API origin: same URL, auth, events and close codes."""
    query = ws.scope.get("query_string", b"").decode("latin-1")
    call_id = ws.query_params.get("call_id")
    try:
        if call_id:
            target = await call_target(_redis(ws), call_id)
            if target is None:
                await _deny(ws, 404, f"no realtime worker holds call {call_id!r}", "call_not_found")
                return
            targets = [target]
        else:
            targets = await session_targets(_redis(ws))
    except (aioredis.ConnectionError, aioredis.TimeoutError):
        await _deny(ws, 503, "the realtime registry (Redis) is unavailable", "registry_unavailable")
        return
    if not targets:
        await _deny(ws, 503, "no realtime worker has room for a new session", "realtime_unavailable")
        return
    upstream = await _open_upstream(ws, targets, query)
    if upstream is None:
        return
    try:
        await ws.accept(subprotocol=upstream.subprotocol)
    except (RuntimeError, WebSocketDisconnect):
        await upstream.close()
        return
    await relay(ws, upstream)


async def _open_upstream(ws: WebSocket, targets: list[Target], query: str) -> Any | None:
    """Connect to the first target that takes the session; on refusal, relay it and return None."""
    headers = {"Authorization": ws.headers["authorization"]} if "authorization" in ws.headers else {}
    offered = list(ws.scope.get("subprotocols") or [])
    for target in targets:
        try:
            return await websockets.connect(
                target.ws_url(query),
                additional_headers=headers,
                subprotocols=offered or None,  # type: ignore[arg-type]
                open_timeout=OPEN_TIMEOUT_S,
                max_size=MAX_FRAME_BYTES,
                compression=None,  # a deflate pass per frame is CPU for nothing on loopback/LAN
                ping_interval=None,  # the client's keepalive crosses the relay; the pool pings us too
            )
        except InvalidStatus as exc:
            response = exc.response
            if response.status_code == 503:
                continue  # full or draining since it last published: the next one may have room
            await _relay_refusal(ws, response.status_code, response.body or b"", response.headers)
            return None
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            log.warning("realtime worker %s unreachable: %s", target.worker, exc)
            continue
    await _deny(ws, 503, "no realtime worker could take the session", "realtime_unavailable")
    return None


async def relay(ws: WebSocket, upstream: Any) -> None:
    """Pump frames both ways until one side closes; then close the other with the same code."""
    to_pool = asyncio.create_task(_client_to_pool(ws, upstream))
    to_client = asyncio.create_task(_pool_to_client(ws, upstream))
    try:
        done, _ = await asyncio.wait({to_pool, to_client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_pool, to_client):
            task.cancel()
        await asyncio.gather(to_pool, to_client, return_exceptions=True)
    left = to_pool.result() if to_pool in done and to_pool.exception() is None else None
    if left is not None:
        code, reason = left  # the client left first
        with contextlib.suppress(Exception):
            await upstream.close(_RESERVED.get(code, code), reason)
        return
    with contextlib.suppress(Exception):
        await upstream.close()
    code = upstream.close_code if upstream.close_code is not None else 1006
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.close(_RESERVED.get(code, code), upstream.close_reason or None)


async def _client_to_pool(ws: WebSocket, upstream: Any) -> tuple[int, str] | None:
    """Client frames to the pool, as received; returns the client's close code and reason, or None
    when the pool closed first (its code is then the one to pass on)."""
    receive, send = ws.receive, upstream.send
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return int(message.get("code") or 1000), str(message.get("reason") or "")
        text = message.get("text")
        try:
            await send(text if text is not None else message.get("bytes") or b"")
        except websockets.ConnectionClosed:
            return None


async def _pool_to_client(ws: WebSocket, upstream: Any) -> None:
    """Pool frames to the client, as received, until the pool closes."""
    send = ws.send
    with contextlib.suppress(websockets.ConnectionClosed):
        async for frame in upstream:
            key = "text" if isinstance(frame, str) else "bytes"
            await send({"type": "websocket.send", key: frame})


async def _relay_refusal(ws: WebSocket, status: int, body: bytes, headers: Any) -> None:
    """The pool's refusal as an OpenAI error: its JSON as it is, its plain-text message wrapped."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or "error" not in data:
            raise ValueError
    except ValueError:
        message = body.decode("utf-8", "replace").strip() or f"realtime worker refused ({status})"
        code = {401: "invalid_api_key", 403: "forbidden", 429: "rate_limit_exceeded"}.get(status)
        data = error_body(message, code=code or "realtime_refused", type_=_error_type(status))
    extra = {"Retry-After": headers["Retry-After"]} if "Retry-After" in headers else None
    await _send_denial(ws, JSONResponse(data, status_code=status, headers=extra))


async def _deny(ws: WebSocket, status: int, message: str, code: str) -> None:
    headers = {"Retry-After": "1"} if status == 503 else None
    body = error_body(message, code=code, type_=_error_type(status))
    await _send_denial(ws, JSONResponse(body, status_code=status, headers=headers))


def _error_type(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


async def _send_denial(ws: WebSocket, response: JSONResponse) -> None:
    """Refuse the upgrade with an HTTP response (ASGI denial extension), or close before accept (1008)."""
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(response)
        else:
            await ws.close(code=1008, reason=json.loads(response.body)["error"]["message"][:120])
