"""WebRTC calls on a pool process: `POST /v1/realtime/calls`, hangup, and the side-band WebSocket.

A call is admitted like a WebSocket session (it counts against this process's `max_sessions` and the
key's session cap) and is checked before anything is allocated: a bad offer or session config is
refused before the client secret is consumed, so a typo does not burn a single-use `ek_`. Once
answered, the call's slot is held until hangup, a closed connection, or ICE not completing within
`ice_timeout_s`.

While a call lives, Redis maps it to this process (`voicechain:realtime:call:<rtc_id>` = worker id,
TTL refreshed), so the API origin can route hangups and side-band sockets to the process holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.sdp import SessionDescription
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket, WebSocketDisconnect

from pipelines.quotas import SessionLimiter
from pipelines.realtime.session import RealtimeSession
from workers.realtime.auth import SECRET_PREFIX, Authenticator, Principal, credential
from workers.realtime.webrtc_call import Call, Emit
from workers.realtime.webrtc_ice import advertise

if TYPE_CHECKING:
    from workers.realtime.app import PoolState

log = logging.getLogger(__name__)

CALL_KEY = "voicechain:realtime:call:"
CALL_KEY_TTL_S = 30
MAX_OFFER_BYTES = 64 * 1024
EXECUTOR_THREADS = 64  # see `CallService._roomy_executor`
MakeSession = Callable[[Principal, Emit], RealtimeSession]


@dataclass
class WebRTCOptions:
    """What `pipelines.settings` says about calls (see `workers.realtime.webrtc_ice`)."""

    ice_servers: list[RTCIceServer] = field(default_factory=list)
    advertise: str | None = None
    port_range: tuple[int, int] | None = None
    ice_timeout_s: float = 15.0
    redis: Any = None  # where the call -> worker keys go; None: single process, no routing
    worker_id: str = "local"


class CallError(Exception):
    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers


def error_response(err: CallError) -> JSONResponse:
    """OpenAI's error shape, as the API answers."""
    kind = "invalid_request_error" if err.status < 500 else "server_error"
    body = {"error": {"message": err.message, "type": kind, "code": err.code, "param": None}}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


@dataclass
class Offer:
    sdp: str
    session: dict[str, Any]


async def read_offer(request: Request) -> Offer:
    """The SDP offer (and optional session config) of `application/sdp` or `multipart/form-data`."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_OFFER_BYTES:
        raise CallError(413, f"offer larger than {MAX_OFFER_BYTES} bytes", "offer_too_large")
    session: dict[str, Any] = {}
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=2, max_fields=4, max_part_size=MAX_OFFER_BYTES)
        except Exception as exc:
            raise CallError(400, f"unreadable multipart body: {exc}", "invalid_body") from exc
        sdp = await _part_text(form.get("sdp"))
        raw_session = await _part_text(form.get("session"))
        if raw_session:
            try:
                session = json.loads(raw_session)
            except ValueError as exc:
                raise CallError(400, "the `session` part is not JSON", "invalid_session") from exc
            if not isinstance(session, dict):
                raise CallError(400, "the `session` part must be a JSON object", "invalid_session")
    elif ctype in ("application/sdp", "text/plain", ""):
        body = await request.body()
        if len(body) > MAX_OFFER_BYTES:
            raise CallError(413, f"offer larger than {MAX_OFFER_BYTES} bytes", "offer_too_large")
        sdp = body.decode("utf-8", "replace")
    else:
        raise CallError(415, "send the offer as application/sdp or multipart/form-data", "unsupported_media")
    check_offer(sdp)
    if session:
        check_session(session)
    return Offer(sdp=sdp, session=session)


async def _part_text(part: Any) -> str:
    if part is None:
        return ""
    if isinstance(part, str):
        return part
    data = await part.read(MAX_OFFER_BYTES + 1)
    if len(data) > MAX_OFFER_BYTES:
        raise CallError(413, f"part larger than {MAX_OFFER_BYTES} bytes", "offer_too_large")
    return bytes(data).decode("utf-8", "replace")


def check_offer(sdp: str) -> None:
    """Parse the offer as aiortc will; refuse what cannot become an audio call."""
    if not sdp.strip():
        raise CallError(400, "empty SDP offer", "invalid_offer")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError... on garbage
        raise CallError(400, f"malformed SDP offer: {exc!r}", "invalid_offer") from exc
    media = {m.kind for m in parsed.media}
    if "audio" not in media:
        raise CallError(400, "the offer has no audio m-line; a call needs one", "invalid_offer")
    audio = next(m for m in parsed.media if m.kind == "audio")
    if not any(c.mimeType.lower() == "audio/opus" for c in audio.rtp.codecs):
        raise CallError(400, "the offer's audio does not offer Opus", "invalid_offer")
    if not audio.ice.usernameFragment or not audio.dtls or not audio.dtls.fingerprints:
        raise CallError(400, "the offer lacks ICE credentials or a DTLS fingerprint", "invalid_offer")


def check_session(session: dict[str, Any]) -> None:
    from openai.types.realtime import RealtimeSessionCreateRequest
    from pydantic import ValidationError

    try:
        RealtimeSessionCreateRequest.model_validate({"type": "realtime", **session})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise CallError(400, f"invalid session: {where}: {first.get('msg')}", "invalid_session") from exc


class CallService:
    """The calls this process holds, and the HTTP/WebSocket endpoints that create and control them."""

    def __init__(
        self,
        *,
        state: PoolState,
        authenticator: Authenticator,
        make_session: MakeSession | None,
        session_limiter: SessionLimiter | None,
        options: WebRTCOptions | None = None,
    ) -> None:
        self.state, self.authenticator, self.make_session = state, authenticator, make_session
        self.limiter = session_limiter
        self.options = options or WebRTCOptions()
        self.calls: dict[str, Call] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self._executor_loop: asyncio.AbstractEventLoop | None = None

    def routes(self) -> list[Route]:
        return [
            Route("/v1/realtime/calls", self.create, methods=["POST"]),
            Route("/v1/realtime/calls/{call_id}/hangup", self.hangup, methods=["POST"]),
        ]

    # --- POST /v1/realtime/calls -----------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        try:
            return await self._create(request)
        except CallError as err:
            return error_response(err)

    async def _create(self, request: Request) -> Response:
        token = credential(request.headers, [])
        if token is None:
            raise CallError(
                401, "missing credential: send Authorization: Bearer <key or ek_...>", "unauthorized"
            )
        if self.make_session is None:
            raise CallError(
                501, "this pool relays sessions upstream; WebRTC calls need local models", "unsupported"
            )
        offer = await read_offer(request)  # before the secret is consumed: a bad offer costs nothing
        refusal = self.state.admit()
        if refusal is not None:
            raise CallError(503, f"realtime worker is {refusal}", "unavailable", {"Retry-After": "1"})
        principal = await self.authenticator.authenticate(token)
        if principal is None:
            raise CallError(401, "invalid, expired or already used credential", "invalid_api_key")
        if offer.session:
            principal = replace(principal, session={**principal.session, **offer.session})
        lease = f"call.{time.monotonic_ns():x}"
        if self.limiter is not None:
            verdict = await self.limiter.acquire(principal.owner, lease, principal.max_sessions)
            if not verdict.allowed:
                raise CallError(
                    429, f"this key already holds {principal.max_sessions} realtime sessions",
                    "session_limit", {"Retry-After": str(verdict.retry_after_s)},
                )  # fmt: skip
        self._occupy(+1)
        self._roomy_executor()
        try:
            call, answer = await self._answer(principal, offer.sdp)
        except BaseException:
            self._occupy(-1)
            if self.limiter is not None:
                await self.limiter.release(principal.owner, lease)
            raise
        task = asyncio.ensure_future(self._serve(call, principal, lease))
        self._serving.add(task)  # a reference, or the loop may drop the task mid-call
        task.add_done_callback(self._serving.discard)
        headers = {"Location": f"/v1/realtime/calls/{call.id}"}
        return Response(answer, status_code=201, media_type="application/sdp", headers=headers)

    def _roomy_executor(self) -> None:
        """aiortc encodes every outgoing 20 ms frame in the loop's default executor, the pool that the
        sessions' model calls (`asyncio.to_thread`) also use, and that often wait there on a model's
        lock. With asyncio's default 6 threads on 2 cores, a frame can queue behind them. Threads are
        cheap: give the loop enough that a frame never waits for a model to be free."""
        loop = asyncio.get_running_loop()
        if self._executor_loop is not loop:
            from concurrent.futures import ThreadPoolExecutor

            loop.set_default_executor(ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="pool"))
            self._executor_loop = loop

    async def _answer(self, principal: Principal, sdp: str) -> tuple[Call, str]:
        make = self.make_session
        assert make is not None
        call = Call(
            owner=principal.owner,
            make_session=lambda emit: make(principal, emit),
            configuration=RTCConfiguration(iceServers=list(self.options.ice_servers)),
            ice_timeout_s=self.options.ice_timeout_s,
            idle_timeout_s=self.state.limits.idle_timeout_s,
        )
        try:
            answer = await asyncio.wait_for(call.answer(sdp), 10)
        except BaseException as exc:
            await call.abort()
            if isinstance(exc, Exception):
                raise CallError(400, f"could not answer the offer: {exc!r}", "invalid_offer") from exc
            raise
        return call, advertise(answer, self.options.advertise)

    def _occupy(self, delta: int) -> None:
        self.state.live += delta
        if delta > 0:
            self.state.total += delta
        self.state.changed.set()

    async def _serve(self, call: Call, principal: Principal, lease: str) -> None:
        from pipelines.observability.metrics import realtime_session

        self.calls[call.id] = call
        keeper = asyncio.ensure_future(self._keep(call, principal.owner, lease))
        try:
            with realtime_session():
                await call.run()
        except Exception:
            log.exception("call %s failed", call.id)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            self.calls.pop(call.id, None)
            self._occupy(-1)
            if self.limiter is not None:
                with contextlib.suppress(Exception):
                    await self.limiter.release(principal.owner, lease)
            await self._unmap(call.id)
            log.info("call %s ended: %s", call.id, call.end_reason)

    async def _keep(self, call: Call, owner: str, lease: str) -> None:
        """While the call lives: its Redis route and the key's session lease stay fresh."""
        redis = self.options.redis
        interval = min(CALL_KEY_TTL_S / 3, self.limiter.lease_s / 3 if self.limiter else CALL_KEY_TTL_S)
        while True:
            if redis is not None:
                with contextlib.suppress(Exception):
                    await redis.set(CALL_KEY + call.id, self.options.worker_id, ex=CALL_KEY_TTL_S)
            if self.limiter is not None:
                with contextlib.suppress(Exception):
                    await self.limiter.renew(owner, lease)
            await asyncio.sleep(interval)

    async def _unmap(self, call_id: str) -> None:
        if self.options.redis is not None:
            with contextlib.suppress(Exception):
                await self.options.redis.delete(CALL_KEY + call_id)

    # --- control -----------------------------------------------------------------------------------

    async def _owned(self, call_id: str, token: str | None) -> Call:
        """The call, if the caller may control it: an API key (not a single-use secret) of its owner."""
        if token is None:
            raise CallError(401, "missing credential", "unauthorized")
        if token.startswith(SECRET_PREFIX):
            raise CallError(
                401, "controlling a call needs an API key, not a client secret", "invalid_api_key"
            )
        principal = await self.authenticator.authenticate(token)
        if principal is None:
            raise CallError(401, "invalid credential", "invalid_api_key")
        call = self.calls.get(call_id)
        if call is None or call.owner != principal.owner:
            raise CallError(404, f"no live call {call_id!r} here", "call_not_found")
        return call

    async def hangup(self, request: Request) -> Response:
        try:
            call = await self._owned(request.path_params["call_id"], credential(request.headers, []))
        except CallError as err:
            return error_response(err)
        call.end("hangup")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gone(call.id), 10)
        return Response(status_code=200)

    async def _gone(self, call_id: str) -> None:
        while call_id in self.calls:
            await asyncio.sleep(0.02)

    async def sideband(self, ws: WebSocket, call_id: str) -> None:
        """`WS /v1/realtime?call_id=rtc_...`: watch the call's server events, send it client events."""
        try:
            call = await self._owned(call_id, credential(ws.headers, ws.scope.get("subprotocols") or []))
        except CallError as err:
            from workers.realtime.app import _deny

            await _deny(ws, err.status, err.message)
            return
        offered = ws.scope.get("subprotocols") or []
        await ws.accept(subprotocol="realtime" if "realtime" in offered else None)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        call.watchers.add(queue)

        async def pump() -> None:
            while (text := await queue.get()) is not None:
                await ws.send_text(text)

        sender = asyncio.ensure_future(pump())
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode("utf-8", "replace")
                if text:
                    call.submit(text)
                if sender.done():
                    break
        except WebSocketDisconnect:
            pass
        finally:
            call.watchers.discard(queue)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close()
