"""One response: `response.created`, then tool calls or a spoken (or written) message, then `response.done`.

A response first asks the agent's input guardrails about the user's words, then follows the agent's plan
(call tools, or say a sentence), or asks the model: with tools offered it completes once and either calls
them or says the text; otherwise its tokens stream straight into speech (`message_out.MessageOut`: first
clause early, sentences overlapped with the model, audio paced to playback). `cancel(reason)` stops model
work at once; whatever way it ends, the outcome is stored before `response.done` goes out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.providers.base import ChatMessage, ChatResult, ToolCall
from pipelines.realtime.config import SessionConfig
from pipelines.realtime.conversation import Conversation, Spoken, heard_text
from pipelines.realtime.engines import Engines, LlmSlot
from pipelines.realtime.gate import Gate
from pipelines.realtime.guardrails import Guard, Tripped
from pipelines.realtime.message_out import MessageOut, Playback
from pipelines.realtime.protocol import event, new_id
from pipelines.realtime.tools import SERVER_LABEL, Plan, ServerRunner, tool_schemas

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a finished response leaves behind, for the session (server tools) and persistence."""

    response_id: str
    status: str
    reason: str | None
    text: str = ""  # everything generated
    heard: str = ""  # what was (estimated to be) played
    item_id: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    guardrail: Tripped | None = None  # the guardrail whose message replaced the reply


class Response:
    """A running response. `cancel(reason)` stops model work at once and finishes with status cancelled."""

    def __init__(
        self,
        *,
        engines: Engines,
        config: SessionConfig,
        conversation: Conversation,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]],
        gate: Gate,
        lead_ms: float = 1000.0,
        plan: Plan | None = None,
        guard: Guard | None = None,
        persist: Callable[[Outcome], Awaitable[None]] | None = None,
        slot: LlmSlot | None = None,
        server_tools: ServerRunner | None = None,
    ) -> None:
        self.id = new_id("resp")
        self.engines, self.config, self.conversation = engines, config, conversation
        self.messages, self.tools, self.gate = messages, tools, gate
        self.lead_ms = lead_ms
        self.plan = plan  # decided by the session's agent (server tools): call tools or say a sentence
        self.guard = guard  # the agent's guardrails, on the user's words and on each sentence before speech
        self.persist = persist  # stores the outcome; awaited before `response.done` goes out
        self.slot = slot or engines.slots[0]  # the LLM context of this session
        self.server_tools = server_tools  # tools run here, inside the response (`mcp_call` items)
        self.stop = threading.Event()
        self.playback = Playback()
        self.spoken: list[Spoken] = []
        self.output: list[dict[str, Any]] = []
        self.outcome = Outcome(self.id, "in_progress", None)
        self._cancel_reason: str | None = None
        self.tokens_out = 0
        self._running = False
        self._closing = False  # past the point where cancelling could change the outcome
        self._task: asyncio.Task[Outcome] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[Outcome]:
        self._task = asyncio.create_task(self._run(), name=f"response {self.id}")
        return self._task

    @property
    def done(self) -> bool:
        return self._task is None or self._task.done()

    async def cancel(self, reason: str) -> Outcome:
        """Stop generation and speech now; returns once `response.done` (cancelled) has been sent."""
        if self._task is None:
            return self.outcome
        if not self._task.done() and not self._closing:
            self._cancel_reason = reason
            self.stop.set()
            if self._running:  # a task cancelled before its first step would never send response.done
                self._task.cancel()
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            return self.outcome

    async def cancel_unstarted(self, reason: str) -> Outcome:
        """A requested response cancelled before it began: the client still gets created + done."""
        await self.gate.send(event("response.created", response=self._response_obj("in_progress")))
        return await self._finish("cancelled", reason)

    async def wait(self) -> Outcome:
        """The outcome, once `response.done` is sent; waiting does not cancel the response."""
        assert self._task is not None, "start() first"
        return await asyncio.shield(self._task)

    async def adopt(self) -> None:
        """Release a speculative response: its held events go out and playback timing starts now."""
        if self.playback.sent_ms > 0:
            self.playback.first_at = time.monotonic()
        await self.gate.open()

    def played_text(self) -> str:
        return heard_text(self.spoken, self.playback.played_ms())

    # --- the run ---------------------------------------------------------------------------------

    def _response_obj(self, status: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": status,
            "status_details": details,
            "output": self.output,
            "conversation_id": "conv_default",
            "output_modalities": list(self.config.output_modalities),
            "max_output_tokens": self.config.max_output_tokens,
            "audio": {"output": {"format": {"type": self.config.output_format}, "voice": self.config.voice}},
            "usage": self._usage(),
            "metadata": None,
        }

    def _usage(self) -> dict[str, Any]:
        prompt = sum(len(m.content) for m in self.messages) // 4  # rough: the local model reports no usage
        out = self.tokens_out
        return {
            "total_tokens": prompt + out,
            "input_tokens": prompt,
            "output_tokens": out,
            "input_token_details": {"text_tokens": prompt, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": out, "audio_tokens": 0},
        }

    async def _run(self) -> Outcome:
        self._running = True
        await self.gate.send(event("response.created", response=self._response_obj("in_progress")))
        if self._cancel_reason is not None:
            return await self._finish("cancelled", self._cancel_reason)
        message: MessageOut | None = None
        try:
            plan = await self._input_checked(self.plan)
            if plan is not None and plan.calls:
                await self._function_calls(ChatResult(text="", tool_calls=plan.calls))
                return await self._finish("completed", None)
            if plan is not None and plan.say is not None:
                message = MessageOut(self)
                await message.begin()
                await message.speak_text(plan.say)
            elif self.tools and self.config.tool_choice != "none":
                result = await asyncio.to_thread(
                    self.engines.complete,
                    self.messages,
                    self.engines.options(self.config.max_output_tokens, tool_schemas(self.tools)),
                    self.slot,
                )
                self.tokens_out = result.completion_tokens
                if result.tool_calls:
                    await self._function_calls(result)
                    return await self._finish("completed", None)
                message = MessageOut(self)
                await message.begin()
                await message.speak_text(result.text)
            else:
                message = MessageOut(self)
                await message.begin()
                await message.speak_stream()
            self._closing = True
            await message.end("completed")
            return await self._finish("completed", None)
        except asyncio.CancelledError:
            reason = self._cancel_reason or "client_cancelled"
            if message is not None and message.begun:
                await message.end("incomplete")
            return await self._finish("cancelled", reason)
        except Exception as exc:  # a model failure ends this response, never the session
            self.stop.set()
            if message is not None and message.begun:
                await message.end("incomplete")
            details = {
                "type": "failed",
                "error": {"type": "server_error", "code": "model_error", "message": str(exc)},
            }
            return await self._finish("failed", None, details)

    async def _input_checked(self, plan: Plan | None) -> Plan | None:
        """The plan, unless an input guardrail trips on the user's words: then its message is the reply."""
        last = self.messages[-1] if self.messages else None
        if self.guard is None or last is None or last.role != "user":
            return plan
        tripped = await self.guard.check_input(last.content)
        if tripped is None:
            return plan
        self.outcome.guardrail = tripped
        return Plan(say=tripped.message)

    async def _finish(
        self, status: str, reason: str | None, details: dict[str, Any] | None = None
    ) -> Outcome:
        self.stop.set()
        if details is None and status != "completed":
            details = {"type": status, "reason": reason}
        self.outcome.status, self.outcome.reason = status, reason
        if self.persist is not None:  # durable first: a client that saw `response.done` finds it stored
            persist, outcome = self.persist, self.outcome
            await self.gate.call(lambda: persist(outcome))
        await self.gate.send(event("response.done", response=self._response_obj(status, details)))
        return self.outcome

    async def _function_calls(self, result: ChatResult) -> None:
        """The response's tool calls: `mcp_call` items for tools that run here (run now), `function_call`
        items for the client's. Once they start, the response completes (cancelling changes nothing)."""
        here = self.server_tools.names() if self.server_tools is not None else frozenset()
        if any(call.name in here for call in result.tool_calls):
            await self.gate.opened.wait()  # a speculative reply runs no tool before it is adopted
        self._closing = True
        for call in result.tool_calls:
            if call.name in here:
                await self._mcp_call(call)
            else:
                await self._client_call(call)

    async def _client_call(self, call: ToolCall) -> None:
        item = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call.id or new_id("call"),
            "arguments": "",
        }
        index = len(self.output)
        self.output.append(item)
        await self.add_item(item, index)
        base = {
            "response_id": self.id,
            "item_id": item["id"],
            "output_index": index,
            "call_id": item["call_id"],
        }
        await self.gate.send(event("response.function_call_arguments.delta", delta=call.arguments, **base))
        await self.gate.send(
            event("response.function_call_arguments.done", arguments=call.arguments, name=call.name, **base)
        )
        item.update(status="completed", arguments=call.arguments)
        await self.item_done(item, index)
        self.outcome.calls.append(dict(item))

    async def _mcp_call(self, call: ToolCall) -> None:
        """Run a call to a tool of this server and show it as GA servers show theirs (`mcp_call`). The
        item's id is the call's, which the agent recognises its own output by in the history."""
        assert self.server_tools is not None
        item: dict[str, Any] = {
            "id": call.id or new_id("item"),
            "type": "mcp_call",
            "server_label": SERVER_LABEL,
            "name": call.name,
            "arguments": "",
            "output": None,
            "error": None,
        }
        index = len(self.output)
        self.output.append(item)
        await self.add_item(item, index)
        ids = {"item_id": item["id"], "output_index": index}
        await self.gate.send(
            event("response.mcp_call_arguments.delta", delta=call.arguments, response_id=self.id, **ids)
        )
        await self.gate.send(
            event("response.mcp_call_arguments.done", arguments=call.arguments, response_id=self.id, **ids)
        )
        item["arguments"] = call.arguments
        await self.gate.send(event("response.mcp_call.in_progress", **ids))
        try:
            item["output"] = await self.server_tools.run(call.name, call.arguments)
        except Exception as exc:  # the tool's failure is the call's outcome, not the response's
            log.exception("server tool %s failed", call.name)
            item["error"] = {"type": "tool_execution_error", "message": str(exc)}
            await self.gate.send(event("response.mcp_call.failed", **ids))
        else:
            await self.gate.send(event("response.mcp_call.completed", **ids))
        await self.item_done(item, index)
        output = item["output"] if item["error"] is None else f"The tool failed: {item['error']['message']}"
        self.outcome.calls.append({**item, "call_id": item["id"], "output": output})

    async def add_item(self, item: dict[str, Any], index: int) -> None:
        """Announce output item `index` and add it to the history (at adoption, if speculative)."""
        snapshot = json.loads(json.dumps(item))
        await self.gate.send(
            event("response.output_item.added", response_id=self.id, output_index=index, item=snapshot)
        )

        def add() -> dict[str, Any]:  # at adoption time for a speculative reply: after the user's item
            previous = self.conversation.add(item)
            return event("conversation.item.added", previous_item_id=previous, item=snapshot)

        await self.gate.do(add)

    async def item_done(self, item: dict[str, Any], index: int) -> None:
        """Announce output item `index` as done, as it stands now."""
        snapshot = json.loads(json.dumps(item))
        await self.gate.send(
            event("response.output_item.done", response_id=self.id, output_index=index, item=snapshot)
        )
        await self.gate.send(event("conversation.item.done", item=snapshot))
