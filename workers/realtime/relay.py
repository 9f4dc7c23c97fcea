"""Provider `openai` for the realtime pool: relay each session to OpenAI's realtime model.

The client speaks the same GA protocol to us as it would to OpenAI, so a session is relayed event by
event: client events go upstream as they came (after the same size and JSON checks as the local path),
server events come back as they came. On the way, the relay

- adds the current agent's server-side tools (and instructions) to the upstream session: one
  `session.update` right after connecting (its `session.updated` is not shown to the client), and the
  agent's tools are merged into every `session.update` of the client that sets `tools`;
- persists the conversation through the session's `ConversationSink`, from the events it sees
  (`relay_observer.UpstreamObserver`): user messages and transcriptions, assistant replies, function
  calls and their outputs, and after a barge-in the share of a reply that was heard;
- runs calls to the agent's own tools here, as the local path does: when a response that called one is
  done, the output goes upstream as a `function_call_output` item followed by `response.create`. A
  handoff switches the agent: the upstream session gets the new agent's instructions and tools (its
  `session.updated` reaches the client, as on the local path). Calls to tools the client declared pass
  through untouched for the client to answer.

Either side closing closes the other. If the upstream cannot be reached, the client gets an `error`
event (`upstream_unavailable`) and the socket is closed cleanly.

Not relayed: the backlog cut of input audio (there is no local processing to fall behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect

from pipelines.realtime.persistence import ConversationSink, Record, RecordWriter
from pipelines.realtime.protocol import ProtocolError, error_event, new_id
from pipelines.realtime.tools import AgentRunner, ToolRunner, server_tool_names
from workers.realtime.relay_observer import Call, UpstreamObserver
from workers.realtime.session_metrics import SessionMetrics

if TYPE_CHECKING:
    from workers.realtime.app import PoolLimits
    from workers.realtime.auth import Principal

log = logging.getLogger(__name__)

DEFAULT_OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"


@dataclass(frozen=True)
class RelayConfig:
    """Where sessions are relayed: the full WebSocket URL (with `?model=`) and the Bearer key."""

    url: str = DEFAULT_OPENAI_REALTIME_URL
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    open_timeout_s: float = 15.0
    max_event_bytes: int = 16 << 20  # one upstream event (audio deltas are small; session echoes less so)


async def run_relay(
    ws: WebSocket,
    config: RelayConfig,
    limits: PoolLimits,
    principal: Principal,
    sink: ConversationSink,
    tools: ToolRunner | None,
) -> None:
    """One relayed session over an accepted client socket; returns when either side has closed."""
    relay = _Relay(ws, config, limits, principal, sink, tools)
    try:
        await relay.run()
    finally:
        await relay.finish()


class _Relay:
    def __init__(
        self,
        ws: WebSocket,
        config: RelayConfig,
        limits: PoolLimits,
        principal: Principal,
        sink: ConversationSink,
        tools: ToolRunner | None,
    ) -> None:
        self.ws, self.config, self.limits, self.principal = ws, config, limits, principal
        self.sink, self.tools = sink, tools
        self.id = new_id("sess")
        self.metrics = SessionMetrics()
        self.upstream: Any = None
        self.closed = False
        self._client_lock = asyncio.Lock()
        self._upstream_lock = asyncio.Lock()
        self._tool_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self._client_tools: list[dict[str, Any]] = []  # the client's own function tools (last update)
        self._sink_open = False
        self._writer = RecordWriter(sink)
        self.observer = UpstreamObserver(
            persist=self._persist, owned=self._owned, run_calls=self._start_tools
        )

    # --- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        agent = self.tools.agent_name if isinstance(self.tools, AgentRunner) else "Assistant"
        await asyncio.to_thread(self.sink.open, self.id, owner=self.principal.owner, agent=agent)
        self._sink_open = True
        headers = dict(self.config.headers)
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        try:
            self.upstream = await websockets.connect(
                self.config.url,
                additional_headers=headers,
                open_timeout=self.config.open_timeout_s,
                max_size=self.config.max_event_bytes,
            )
        except Exception as exc:  # refused, unreachable, 401/403 from upstream, timeout
            log.warning("realtime upstream %s unreachable: %s", _redact(self.config.url), exc)
            await self._emit_error(
                f"The realtime model upstream is unavailable: {type(exc).__name__}.",
                code="upstream_unavailable",
                type="server_error",
            )
            return
        await self._configure_upstream()
        pumps = [asyncio.create_task(self._from_client()), asyncio.create_task(self._from_upstream())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def finish(self) -> None:
        self.closed = True
        if self.upstream is not None:
            with contextlib.suppress(Exception):
                await self.upstream.close()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.ws.close()
        for task in self._background:  # tool runs still going: their session is over
            task.cancel()
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self._writer.close()  # what was said so far is written before the sink closes
        if self._sink_open:
            await asyncio.to_thread(self.sink.close)

    # --- client -> upstream ----------------------------------------------------------------------

    async def _from_client(self) -> None:
        from workers.realtime.app import _receive

        while True:
            try:
                raw = await asyncio.wait_for(_receive(self.ws), timeout=self.limits.idle_timeout_s)
            except TimeoutError:
                await self._emit_error("Session idle timeout.", code="idle_timeout")
                return
            except (RuntimeError, WebSocketDisconnect):
                return
            if raw is None:
                return
            if len(raw) > self.limits.max_message_bytes:
                await self._emit_error(
                    f"Event of {len(raw)} bytes exceeds {self.limits.max_message_bytes}.",
                    code="message_too_large",
                )
                continue
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                await self._emit_error(f"Event is not valid JSON: {exc}", code="invalid_json")
                continue
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                await self._emit_error("Event must be a JSON object with a `type`.", code="invalid_event")
                continue
            if data["type"] == "session.update" and isinstance(data.get("session"), dict):
                await self._send_update(data, hide_reply=False)
                continue
            if not await self._send_upstream(raw):
                return

    async def _configure_upstream(self) -> None:
        """The agent's tools and instructions (and a client secret's preset) for the upstream session."""
        session: dict[str, Any] = {
            k: v for k, v in (self.principal.session or {}).items() if k != "conversation_id"
        }
        if isinstance(session.get("tools"), list):
            self._client_tools = [t for t in session["tools"] if isinstance(t, dict)]
        if isinstance(self.tools, AgentRunner) and self.tools.instructions and "instructions" not in session:
            session["instructions"] = self.tools.instructions
        own = self._agent_tools()
        if own:
            session["tools"] = self._merged_tools(self._client_tools)
        if session:
            session["type"] = "realtime"
            await self._send_update({"type": "session.update", "session": session}, hide_reply=True)

    async def _send_update(self, data: dict[str, Any], *, hide_reply: bool) -> None:
        session = data["session"]
        if isinstance(session.get("tools"), list):
            if not hide_reply:
                self._client_tools = [t for t in session["tools"] if isinstance(t, dict)]
            session["tools"] = self._merged_tools(self._client_tools)
        if not isinstance(data.get("event_id"), str):
            data["event_id"] = new_id("event")
        self.observer.expect_update(data["event_id"], hide=hide_reply)
        await self._send_upstream(json.dumps(data))

    def _agent_tools(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.tools.definitions()] if self.tools is not None else []

    def _merged_tools(self, client_tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The client's tools, and the agent's; a name both declare is the agent's (it runs here)."""
        own = self._agent_tools()
        names = {d["name"] for d in own}
        return [t for t in client_tools if t.get("name") not in names] + own

    async def _send_upstream(self, text: str) -> bool:
        try:
            async with self._upstream_lock:
                await self.upstream.send(text)
            return True
        except websockets.ConnectionClosed:
            return False

    # --- upstream -> client ----------------------------------------------------------------------

    async def _from_upstream(self) -> None:
        try:
            async for message in self.upstream:
                raw = message if isinstance(message, str) else message.decode("utf-8", "replace")
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError:
                    data = None
                if isinstance(data, dict):
                    self.metrics.observe(data)
                    if not self.observer.observe(data):
                        continue
                await self._emit_text(raw)
        except websockets.ConnectionClosedError as exc:
            log.warning("realtime upstream closed the session: %s", exc)
            await self._emit_error(
                "The realtime model upstream closed the session.", code="upstream_closed", type="server_error"
            )

    def _owned(self) -> frozenset[str]:
        """The tools that run here: the current agent's (a handoff changes them)."""
        return server_tool_names(self.tools) if self.tools is not None else frozenset()

    def _start_tools(self, calls: list[Call]) -> None:
        self._spawn(self._run_tools(calls))

    async def _run_tools(self, calls: list[Call]) -> None:
        """Answer the agent's own tool calls here, then let the model go on (as the local path does)."""
        assert self.tools is not None
        async with self._tool_lock:
            before = self.tools.agent_name if isinstance(self.tools, AgentRunner) else None
            for call in calls:
                if not self.observer.answer(call["call_id"]):
                    continue
                output = await self.tools.run(str(call["name"]), str(call.get("arguments") or ""))
                item = {
                    "id": new_id("item"),
                    "type": "function_call_output",
                    "call_id": call["call_id"],
                    "output": output,
                }
                self._persist(
                    Record("function_call_output", item["id"], output, {"call_id": call["call_id"]})
                )
                create = {"type": "conversation.item.create", "event_id": new_id("event"), "item": item}
                if not await self._send_upstream(json.dumps(create)):
                    return
            if isinstance(self.tools, AgentRunner) and self.tools.agent_name != before:
                await self._handoff(before, self.tools)
            await self._send_upstream(json.dumps({"type": "response.create", "event_id": new_id("event")}))

    async def _handoff(self, old: str | None, runner: AgentRunner) -> None:
        new = runner.agent_name
        self._persist(Record("agent", new_id("item"), new, {"from": old, "to": new}))
        session: dict[str, Any] = {"type": "realtime", "tools": list(self._client_tools)}
        if runner.instructions:
            session["instructions"] = runner.instructions
        await self._send_update({"type": "session.update", "session": session}, hide_reply=False)

    # --- helpers ---------------------------------------------------------------------------------

    def _persist(self, record: Record) -> None:
        """Queue a write; one writer keeps them in event order (a reply must not land before its turn)."""
        if record.item_id and record.item_id != "None":
            self._writer.put(record)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _emit_text(self, text: str) -> None:
        if self.closed:
            return
        async with self._client_lock:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.ws.send_text(text)

    async def _emit_error(self, message: str, *, code: str, type: str = "invalid_request_error") -> None:
        data = error_event(ProtocolError(message, code=code, type=type))
        self.metrics.observe(data)
        await self._emit_text(json.dumps(data))


def _redact(url: str) -> str:
    return url.split("?", 1)[0]
