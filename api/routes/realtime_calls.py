"""WebRTC calls on the API origin: `POST /v1/realtime/calls` and `POST /v1/realtime/calls/{id}/hangup`.

Clients derive every realtime URL from the API's base URL (the JS SDK posts its offer to
`<baseUrl>/calls`), so the API accepts calls and hands each to a pool process: a new call goes to the
least loaded one in the Redis registry, a hangup to the process named by the call's Redis key. The body
and the `Authorization` header travel as received: the pool authenticates (it is where an `ek_` secret
is consumed), so the API holds no call state and any API replica can route any call. The API still
refuses at its edge what no pool process would take (no or a wrong credential, an API key without the
`realtime` scope, a malformed offer), so such a request costs no routing and answers 4xx even when no
pool process is up; an `ek_` secret is only looked at there, never used up. Only signalling passes here;
the media flows between the browser and the pool process directly.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import redis.asyncio as aioredis
from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, authenticate
from api.errors import ApiError
from workers.celery_app import DEFAULT_BROKER
from workers.realtime.auth import SECRET_PREFIX, client_secret_exists
from workers.realtime.calls import CALL_KEY, MAX_OFFER_BYTES, CallError, read_offer
from workers.realtime.registry import PREFIX, least_loaded
from workers.realtime.routing import url_host

router = APIRouter(prefix="/v1/realtime", tags=["realtime"])
FORWARD_TIMEOUT_S = 15.0  # the pool answers within ~10 s or gives up on the offer itself
_PASSED_HEADERS = ("authorization", "content-type")
_RETURNED_HEADERS = ("content-type", "location", "retry-after")


@router.post("/calls", status_code=201, response_class=Response)
async def create_call(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Answer an SDP offer (`application/sdp`, or `multipart/form-data` with `sdp` and `session`):
    `201` with the SDP answer and `Location: /v1/realtime/calls/rtc_...`."""
    async with _redis(settings) as redis:
        await _admit(request, settings, redis, authorization)
        body = await _bounded_body(request)
        await _check_offer(request, body)
        worker = await _least_loaded(redis)
    return await _forward(request, worker, "/v1/realtime/calls", body)


@router.post("/calls/{call_id}/hangup", response_class=Response)
async def hangup_call(
    call_id: str,
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """End a call; the pool process holding it checks that the caller's key owns it."""
    async with _redis(settings) as redis:
        await _admit(request, settings, redis, authorization)
        worker = await _holder(redis, call_id)
    return await _forward(request, worker, f"/v1/realtime/calls/{call_id}/hangup", b"")


async def _admit(request: Request, settings: Any, redis: Any, authorization: str | None) -> None:
    """401 / 403 / 429 as every other route answers them; a live `ek_` secret passes untouched."""
    token = (authorization or "")[7:].strip() if (authorization or "").lower().startswith("bearer ") else ""
    if not token.startswith(SECRET_PREFIX):
        await run_in_threadpool(authenticate, request, settings, authorization)  # it may read the database
        return
    try:
        live = await client_secret_exists(redis, token)
    except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
        raise ApiError(503, "the registry is unavailable; try again shortly", code="broker_unavailable",
                       headers={"Retry-After": "5"}) from exc  # fmt: skip
    if not live:
        raise ApiError(401, "invalid, expired or already used client secret", code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


async def _check_offer(request: Request, body: bytes) -> None:
    """The pool's own reading of the offer (`read_offer`: media type, SDP, session part), over the bytes
    already read, so what no pool process would take is refused here."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        await read_offer(Request(request.scope, receive))
    except CallError as err:
        raise ApiError(err.status, err.message, code=err.code) from err


class _redis:
    """A short-lived client per request, as the client-secret route uses one."""

    def __init__(self, settings: Any) -> None:
        self.client = aioredis.Redis.from_url(settings.redis_url or DEFAULT_BROKER, socket_timeout=5)

    async def __aenter__(self) -> Any:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()


async def _bounded_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_OFFER_BYTES + 4096:  # room for multipart framing around the offer
            raise ApiError(413, f"offer larger than {MAX_OFFER_BYTES} bytes", code="offer_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _least_loaded(redis: Any) -> dict[str, Any]:
    try:
        worker = await least_loaded(redis)
    except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
        raise ApiError(503, "the registry is unavailable; try again shortly", code="broker_unavailable",
                       headers={"Retry-After": "5"}) from exc  # fmt: skip
    if worker is None:
        raise ApiError(503, "no realtime worker has room for a call", code="no_realtime_worker",
                       headers={"Retry-After": "1"})  # fmt: skip
    return worker


async def _holder(redis: Any, call_id: str) -> dict[str, Any]:
    try:
        worker_id = await redis.get(CALL_KEY + call_id)
        data = await redis.hgetall(PREFIX + worker_id.decode()) if worker_id else {}
    except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
        raise ApiError(503, "the registry is unavailable; try again shortly", code="broker_unavailable",
                       headers={"Retry-After": "5"}) from exc  # fmt: skip
    if not data:
        raise ApiError(404, f"no live call {call_id!r}", code="call_not_found")
    return {k.decode(): v.decode() for k, v in data.items()}


async def _forward(request: Request, worker: dict[str, Any], path: str, body: bytes) -> Response:
    headers = {k: v for k, v in request.headers.items() if k.lower() in _PASSED_HEADERS}
    url = f"http://{url_host(worker['host'])}:{worker['port']}{path}"
    try:
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S, trust_env=False) as client:
            answer = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ApiError(
            502, f"the realtime worker did not answer: {exc!r}", code="realtime_worker_error"
        ) from exc
    kept = {k: v for k, v in answer.headers.items() if k.lower() in _RETURNED_HEADERS}
    return Response(answer.content, status_code=answer.status_code, headers=kept)
