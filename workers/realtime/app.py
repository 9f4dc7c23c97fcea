"""The ASGI app of one realtime worker process: `WS /v1/realtime` plus a small health endpoint.

Admission happens before the WebSocket is accepted, so a refused client never gets a session: 503 when
the process is draining or full, 401 without a valid credential. Each accepted connection runs a reader
(socket -> bounded queue) and a handler (queue -> session), so the socket is always drained and an input
backlog is measured and cut instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pipelines.observability.metrics import realtime_session
from pipelines.quotas import SessionLimiter
from pipelines.realtime.config import SessionConfig, apply_update
from pipelines.realtime.engines import Engines
from pipelines.realtime.persistence import ConversationSink, MemorySink
from pipelines.realtime.protocol import ProtocolError, error_event
from pipelines.realtime.session import RealtimeSession, SessionLimits
from pipelines.realtime.tools import ToolRunner
from workers.realtime.auth import REALTIME_SUBPROTOCOL, Authenticator, Principal, credential
from workers.realtime.calls import CallService, WebRTCOptions
from workers.realtime.session_metrics import SessionMetrics

if TYPE_CHECKING:
    from workers.realtime.relay import RelayConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolLimits:
    """Per-process and per-session limits (named defaults; the CLI/settings may override them)."""

    max_sessions: int = 8
    max_message_bytes: int = 1 << 20  # one event; 1 MiB is ~21 s of 24 kHz PCM in base64
    idle_timeout_s: float = 300.0  # no client event for this long ends the session
    max_backlog_ms: int = 2000  # unprocessed input audio beyond this is dropped with an error
    drain_timeout_s: float = 600.0  # SIGTERM: how long running sessions may go on
    session: SessionLimits = field(default_factory=SessionLimits)


@dataclass
class PoolState:
    """Live sessions of this process; read by the Redis registration and by draining."""

    limits: PoolLimits
    live: int = 0
    draining: bool = False
    total: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def admit(self) -> str | None:
        if self.draining:
            return "draining"
        if self.live >= self.limits.max_sessions:
            return "full"
        return None


SinkFactory = Callable[[Principal], ConversationSink]


def create_app(
    *,
    engines: Callable[[], Awaitable[Engines]] | None,
    authenticator: Authenticator,
    limits: PoolLimits | None = None,
    sink_factory: SinkFactory | None = None,
    tools: ToolRunner | Callable[[], ToolRunner] | None = None,
    on_startup: Callable[[PoolState], Awaitable[None]] | None = None,
    on_shutdown: Callable[[PoolState], Awaitable[None]] | None = None,
    session_limiter: SessionLimiter | None = None,
    relay: RelayConfig | None = None,
    webrtc: WebRTCOptions | None = None,
) -> Starlette:
    """Build the worker app. `engines` loads the models once (at startup, before the first session).
    `tools` is one server-side `ToolRunner` for all sessions, or a factory called once per session (a
    runner with per-session state, such as the current agent of `AgentTools`). With `relay` (provider
    `openai`), sessions are relayed to that upstream realtime model (`workers.realtime.relay`) instead of
    running the local chain, and `engines` may be None (no local models are loaded). `webrtc` configures
    WebRTC calls (`workers.realtime.calls`); they run the local chain only."""
    state = PoolState(limits or PoolLimits())
    loaded: dict[str, Engines] = {}

    def call_session(principal: Principal, emit: Callable[[dict[str, Any]], Awaitable[None]]) -> Any:
        sink = sink_factory(principal) if sink_factory else MemorySink()
        runner = tools() if callable(tools) else tools
        config = _initial_config(principal)
        return RealtimeSession(
            loaded["engines"], emit, config=config, sink=sink, tools=runner, limits=state.limits.session
        )

    calls = CallService(
        state=state,
        authenticator=authenticator,
        make_session=call_session if relay is None else None,
        session_limiter=session_limiter,
        options=webrtc,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if engines is not None:
            loaded["engines"] = await engines()
        if on_startup is not None:
            await on_startup(state)
        yield
        if on_shutdown is not None:
            await on_shutdown(state)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"live": state.live, "max": state.limits.max_sessions, "draining": state.draining}
        )

    async def realtime(ws: WebSocket) -> None:
        if call_id := ws.query_params.get("call_id"):  # the side-band socket of a WebRTC call
            await calls.sideband(ws, call_id)
            return
        refusal = state.admit()
        if refusal is not None:
            await _deny(ws, 503, f"realtime worker is {refusal}")
            return
        principal = await authenticator.authenticate(
            credential(ws.headers, ws.scope.get("subprotocols") or [])
        )
        if principal is None:
            await _deny(ws, 401, "missing, invalid, expired or already used credential")
            return
        lease = f"{id(ws):x}.{time.monotonic_ns():x}"
        if session_limiter is not None:
            verdict = await session_limiter.acquire(principal.owner, lease, principal.max_sessions)
            if not verdict.allowed:
                await _deny(
                    ws, 429, f"this key already holds {principal.max_sessions} realtime sessions",
                    {"Retry-After": str(verdict.retry_after_s)},
                )  # fmt: skip
                return
        offered = ws.scope.get("subprotocols") or []
        renewing = asyncio.create_task(_renew(session_limiter, principal.owner, lease))
        try:
            await ws.accept(subprotocol=REALTIME_SUBPROTOCOL if REALTIME_SUBPROTOCOL in offered else None)
            state.live += 1
            state.total += 1
            state.changed.set()
            try:
                sink = sink_factory(principal) if sink_factory else MemorySink()
                with realtime_session():  # the live-sessions gauge
                    runner = tools() if callable(tools) else tools
                    if relay is not None:
                        from workers.realtime.relay import run_relay

                        await run_relay(ws, relay, state.limits, principal, sink, runner)
                    else:
                        await _run_session(
                            ws, loaded["engines"], state.limits, principal, sink, runner,
                            transcription=_wants_transcription(ws, principal),
                        )  # fmt: skip
            finally:
                state.live -= 1
                state.changed.set()
        finally:
            renewing.cancel()
            if session_limiter is not None:
                await session_limiter.release(principal.owner, lease)

    app = Starlette(
        routes=[Route("/healthz", health), WebSocketRoute("/v1/realtime", realtime), *calls.routes()],
        lifespan=lifespan,
    )
    app.state.pool = state
    app.state.calls = calls
    return app


async def _renew(limiter: SessionLimiter | None, owner: str, lease: str) -> None:
    """Keep this session's lease alive; if the process dies, the lease lapses and frees the slot."""
    if limiter is None:
        return
    while True:
        await asyncio.sleep(limiter.lease_s / 3)
        await limiter.renew(owner, lease)


async def _deny(ws: WebSocket, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """Refuse the upgrade with an HTTP status (ASGI denial extension), or close before accept (403)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(PlainTextResponse(message, status_code=status, headers=headers))
    else:
        await ws.close(code=1008, reason=message)


def _initial_config(principal: Principal) -> SessionConfig:
    """A client secret may carry a session preset (as OpenAI's do); apply it like a `session.update`."""
    config = SessionConfig()
    if principal.session:
        from openai.types.realtime import RealtimeSessionCreateRequest

        preset = RealtimeSessionCreateRequest.model_validate({"type": "realtime", **principal.session})
        config = apply_update(config, preset)
    return config


def _wants_transcription(ws: WebSocket, principal: Principal) -> bool:
    """`?intent=transcription` (the Agents SDK's streamed STT), or a secret minted for a transcription
    session: the session transcribes and never responds (`pipelines.realtime.transcription`)."""
    preset = principal.session or {}
    return ws.query_params.get("intent") == "transcription" or preset.get("type") == "transcription"


async def _run_session(
    ws: WebSocket,
    engines: Engines,
    limits: PoolLimits,
    principal: Principal,
    sink: ConversationSink,
    tools: ToolRunner | None,
    *,
    transcription: bool = False,
) -> None:
    send_lock = asyncio.Lock()
    closed = False
    metrics = SessionMetrics()

    async def emit(data: dict[str, Any]) -> None:
        if closed:
            return
        metrics.observe(data)
        text = json.dumps(data)
        async with send_lock:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.send_text(text)

    if transcription:
        from pipelines.realtime.transcription import TranscriptionSession, preset_config

        session: RealtimeSession = TranscriptionSession(
            engines, emit, config=preset_config(principal.session), sink=sink, limits=limits.session
        )
    else:
        session = RealtimeSession(
            engines, emit, config=_initial_config(principal), sink=sink, tools=tools, limits=limits.session
        )
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    backlog = _Backlog()
    await session.start(owner=principal.owner)

    async def reader() -> None:
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(_receive(ws), timeout=limits.idle_timeout_s)
                except TimeoutError:
                    await emit(error_event(ProtocolError("Session idle timeout.", code="idle_timeout")))
                    break
                if raw is None:
                    break
                if len(raw) > limits.max_message_bytes:
                    await emit(
                        error_event(
                            ProtocolError(
                                f"Event of {len(raw)} bytes exceeds {limits.max_message_bytes}.",
                                code="message_too_large",
                            )
                        )
                    )
                    continue
                audio_ms = _append_ms(raw)
                if audio_ms and backlog.ms + audio_ms > limits.max_backlog_ms:
                    await emit(
                        error_event(
                            ProtocolError(
                                "Input audio is arriving faster than it can be processed; chunk dropped.",
                                code="input_audio_backlog",
                                type="server_error",
                            )
                        )
                    )
                    continue
                backlog.ms += audio_ms
                queue.put_nowait(raw)
        finally:
            queue.put_nowait(None)

    async def handler() -> None:
        while (raw := await queue.get()) is not None:
            started = time.perf_counter()
            await session.handle(raw)
            backlog.ms = max(0.0, backlog.ms - _append_ms(raw))
            backlog.observe(time.perf_counter() - started)

    read_task = asyncio.create_task(reader())
    try:
        await handler()
    finally:
        closed = True
        read_task.cancel()
        await asyncio.gather(read_task, return_exceptions=True)
        await session.close()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may be gone already
            await ws.close()


@dataclass
class _Backlog:
    ms: float = 0.0
    slowest_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.slowest_s = max(self.slowest_s, seconds)


async def _receive(ws: WebSocket) -> str | None:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    if message.get("text") is not None:
        return str(message["text"])
    data = message.get("bytes")
    return data.decode("utf-8", "replace") if data is not None else ""


def _append_ms(raw: str) -> float:
    """Audio length of an `input_audio_buffer.append`, from its size alone (PCM16 at 24 kHz in base64)."""
    if '"input_audio_buffer.append"' not in raw[:200] and '"input_audio_buffer.append"' not in raw[-200:]:
        return 0.0
    return len(raw) * 3 / 4 / 48.0
