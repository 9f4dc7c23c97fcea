"""`voicechain realtime --processes N`: N worker processes serving `WS /v1/realtime` on one port.

Each process binds its own listening socket with `SO_REUSEPORT` and the kernel spreads new connections
across them. We chose this over a parent that accepts and hands sockets down (uvicorn's `--workers`) for
draining: a process told to stop closes *its own* listener, so the kernel sends new connections only to
the others at once, while its live sessions go on; with one shared socket, a draining process would
keep accepting connections only to refuse them.

SIGTERM (or SIGHUP) to the parent is forwarded to every child; a child then drains: it stops listening,
marks itself draining in Redis, lets running sessions finish (up to `drain_timeout_s`), and exits. A second
SIGTERM or SIGINT exits at once. A child that dies unexpectedly is restarted by the parent; one that dies
with its parent is the kernel's doing (`PR_SET_PDEATHSIG`), so a SIGKILLed parent leaves no orphan.

A process whose models are not installed does not crash (and get restarted forever): it serves
`/healthz` with 503 and the missing stages, refuses sessions with 503, and says so once in its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from pipelines.providers.preflight import Missing, describe, realtime_problems
from pipelines.quotas import SessionLimiter
from pipelines.realtime.engines import Engines, load_engines
from pipelines.settings import Settings
from workers.lifetime import EXIT_CONFIG, die_with_parent
from workers.realtime.app import PoolLimits, PoolState, create_app
from workers.realtime.auth import Authenticator, Principal

log = logging.getLogger(__name__)


def build_app(
    settings: Settings,
    *,
    limits: PoolLimits | None = None,
    port: int | None = None,
    index: int = 0,
    direct_port: int | None = None,
    host: str | None = None,
) -> Starlette:
    """The app for one worker process, wired to the configured models, database and Redis.
    `direct_port`: a port only this process listens on, published in the registry instead of the shared
    one, so the API gateway can reach this very process (a call it holds, the least loaded one).
    `host`: the interface it listens on (default `settings.host`), from which the registry's address
    follows (`registry.advertised_host`)."""
    from pipelines.agents.registry import load_agents
    from pipelines.bootstrap_keys import accepted_keys
    from pipelines.realtime.agent_tools import AgentTools
    from workers.realtime.registry import advertised_host

    redis = _redis(settings)
    address = advertised_host(host or settings.host, settings.realtime_advertise_host)
    agents = load_agents(settings.agents, default=settings.default_agent)  # a bad setting fails at start
    registration: dict[str, Any] = {}
    me = _worker_id(port or settings.realtime_port, index)

    async def engines() -> Engines:
        loaded = await asyncio.to_thread(load_engines, settings)
        # the agents' router (encoder load, example fit: seconds) before the first session, not in its
        # first turn; sessions of a relay to a hosted model never route, so only here
        await asyncio.to_thread(agents.router.warm)
        return loaded

    relay = None
    if settings.realtime_provider == "openai":  # relay to OpenAI's realtime model; no local models
        from workers.realtime.relay import RelayConfig

        relay = RelayConfig(url=settings.realtime_openai_url, api_key=settings.realtime_openai_key)

    def sink_factory(principal: Principal) -> Any:
        from workers.realtime.storage_sink import StorageSink

        return StorageSink(
            settings.resolved_database_url, conversation_id=principal.session.get("conversation_id")
        )

    async def on_startup(state: PoolState) -> None:
        if redis is None:
            return
        from workers.realtime.registry import Registration

        reg = Registration(
            redis,
            state,
            worker=me,
            host=address,
            port=direct_port or port or settings.realtime_port,
        )
        reg.start()
        registration["reg"] = reg

    async def on_shutdown(state: PoolState) -> None:
        if "reg" in registration:
            await registration["reg"].stop()

    return create_app(
        engines=engines if relay is None else None,
        relay=relay,
        authenticator=Authenticator(accepted_keys(settings), redis, key_lookup=_database_keys(settings)),
        session_limiter=SessionLimiter(redis) if redis is not None else None,
        limits=limits,
        sink_factory=sink_factory,
        # each session starts with the default agent
        tools=lambda: AgentTools(agents, stt_prompt=settings.stt_agent_prompt),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        webrtc=webrtc_options(settings, redis, me),
    )


def _worker_id(port: int, index: int) -> str:
    from workers.realtime.registry import worker_id

    return worker_id(port, index)


def webrtc_options(settings: Settings, redis: Any, worker: str) -> Any:
    """The call settings of this process; a malformed one fails at start, not at the first call."""
    from workers.realtime.calls import WebRTCOptions
    from workers.realtime.webrtc_ice import parse_ice_servers, parse_port_range, use_port_range

    ports = parse_port_range(settings.webrtc_udp_ports)
    use_port_range(ports)
    return WebRTCOptions(
        ice_servers=parse_ice_servers(settings.webrtc_ice_servers),
        advertise=settings.webrtc_advertise_address or settings.realtime_advertise_host,
        port_range=ports,
        ice_timeout_s=settings.webrtc_ice_timeout_s,
        redis=redis,
        worker_id=worker,
    )


def _database_keys(settings: Settings) -> Callable[[str], Principal | None]:
    """Database API keys with the `realtime` scope; the key id is the owner, as on the HTTP API."""
    from pipelines.storage.api_keys import find_active
    from pipelines.storage.database import session_scope

    def lookup(token: str) -> Principal | None:
        with session_scope(settings.resolved_database_url) as session:
            row = find_active(session, token)
            if row is None or "realtime" not in row.scopes:
                return None
            limit = row.max_realtime_sessions or settings.realtime_sessions_per_key
            return Principal(owner=row.id, kind="api_key", max_sessions=limit or None)

    return lookup


def _redis(settings: Settings) -> Any:
    if not settings.redis_url:
        return None
    import redis.asyncio as aioredis

    return aioredis.from_url(settings.redis_url)


class DrainingServer(uvicorn.Server):
    """uvicorn, except that the first SIGTERM drains live WebSocket sessions instead of closing them."""

    def __init__(self, config: uvicorn.Config, state: PoolState) -> None:
        super().__init__(config)
        self.pool = state
        self._drain_task: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.pool.draining or (sig == signal.SIGINT and self.should_exit):
            super().handle_exit(sig, frame)
            self.force_exit = True
            return
        self.pool.draining = True
        self._loop.call_soon_threadsafe(self._start_drain)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()  # signals arrive outside the loop; drain is scheduled on it
        await super().startup(sockets)

    def _start_drain(self) -> None:
        self.pool.changed.set()
        self._drain_task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        for server in getattr(self, "servers", []):
            server.close()  # stop listening; established connections are untouched
        deadline = time.monotonic() + self.pool.limits.drain_timeout_s
        while self.pool.live > 0 and time.monotonic() < deadline:
            self.pool.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pool.changed.wait(), 1.0)
        log.info("drained (%d sessions left), exiting", self.pool.live)
        self.should_exit = True


def reuseport_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def unavailable_app(problems: dict[str, Missing]) -> Starlette:
    """What a process whose models are missing serves: the reason, on `/healthz` (503) and to every
    session it refuses (503), so a probe, a load balancer and a client all see why."""
    models = {stage: str(problem) for stage, problem in problems.items()}
    reason = "realtime worker cannot load its models: " + "; ".join(f"{s} {m}" for s, m in models.items())

    async def health(request: Request) -> JSONResponse:
        body = {"status": "unavailable", "live": 0, "max": 0, "draining": False, "models": models}
        return JSONResponse(body, status_code=503)

    async def realtime(ws: WebSocket) -> None:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(PlainTextResponse(reason, status_code=503))
        else:
            await ws.close(code=1011, reason=reason[:120])

    return Starlette(routes=[Route("/healthz", health), WebSocketRoute("/v1/realtime", realtime)])


def private_socket(host: str) -> socket.socket:
    """A listener on a free port of `host` that only this process holds (see `build_app`)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(2048)
    return sock


def run_worker(
    settings: Settings, host: str, port: int, limits: PoolLimits, index: int = 0, direct: bool = False
) -> None:
    """One worker process: its own SO_REUSEPORT listener, its own models, draining on SIGTERM.
    With a metrics port set, process i serves its own `/metrics` on that port + i. With `direct` (one of
    several processes sharing the port), it also listens on a private port and publishes that one."""
    problems = realtime_problems(settings)
    if problems:
        log.error("realtime worker %d cannot load its models:\n%s", index, describe(problems))
        config = uvicorn.Config(unavailable_app(problems), lifespan="off", log_level="info")
        uvicorn.Server(config).run(sockets=[reuseport_socket(host, port)])
        return
    sockets = [reuseport_socket(host, port)]
    if direct:
        sockets.append(private_socket(host))
    direct_port = sockets[-1].getsockname()[1] if direct else None
    app = build_app(settings, limits=limits, port=port, index=index, direct_port=direct_port, host=host)
    if settings.realtime_metrics_port:
        from pipelines.observability.metrics import serve_metrics

        serve_metrics(settings.realtime_metrics_port + index, addr=settings.metrics_addr)
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws_max_size=limits.max_message_bytes * 4,  # hard cap; above the soft limit an error event is sent
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    server = DrainingServer(config, app.state.pool)
    try:
        server.run(sockets=sockets)
    finally:
        if not server.started:  # the lifespan failed: its models would not load, nor will they next time
            raise SystemExit(EXIT_CONFIG)


def _child(
    settings_data: dict[str, Any],
    host: str,
    port: int,
    limits_data: dict[str, Any],
    index: int,
    parent_pid: int | None = None,
) -> None:
    from workers.realtime.app import SessionLimits

    if parent_pid is not None:  # a spawned child has no preexec hook: tie it to the pool parent here
        die_with_parent(parent_pid)

    limits_data = dict(limits_data)
    session = SessionLimits(**limits_data.pop("session"))
    limits = PoolLimits(**limits_data, session=session)
    run_worker(Settings(**settings_data), host, port, limits, index, direct=True)


def serve(
    settings: Settings,
    processes: int = 1,
    host: str | None = None,
    port: int | None = None,
    limits: PoolLimits | None = None,
) -> None:
    """Run the pool in the foreground until SIGTERM/SIGINT (what `voicechain realtime` calls)."""
    host = host or settings.host
    port = port or settings.realtime_port
    limits = limits or PoolLimits()
    if processes <= 1:
        run_worker(settings, host, port, limits)
        return
    ctx = multiprocessing.get_context("spawn")  # models and thread pools must not cross a fork
    args = (settings.model_dump(mode="json"), host, port, asdict(limits))
    children: dict[int, multiprocessing.process.BaseProcess] = {}
    stopping = False

    def start(i: int) -> None:
        proc = ctx.Process(
            target=_child,
            args=(*args, i),
            kwargs={"parent_pid": os.getpid()},
            name=f"voicechain-realtime-{i}",
            daemon=False,
        )
        proc.start()
        children[i] = proc

    def stop(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in children.values():
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGINT if sig == signal.SIGINT else signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    for i in range(processes):
        start(i)
    while True:
        for i, proc in list(children.items()):
            if not proc.is_alive() and not stopping:
                if proc.exitcode == EXIT_CONFIG:
                    log.error("realtime worker %d cannot run as configured; not restarting it", i)
                    del children[i]
                    continue
                log.warning("realtime worker %d exited with %s; restarting", i, proc.exitcode)
                start(i)
        if not children:  # every process failed on its configuration: say so to our own supervisor
            raise SystemExit(EXIT_CONFIG)
        if stopping and not any(p.is_alive() for p in children.values()):
            return
        time.sleep(0.5)


def app_from_env() -> Starlette:
    """Zero-argument factory for `uvicorn --factory workers.realtime.server:app_from_env` (one process)."""
    from pipelines.settings import get_settings

    return build_app(get_settings())
