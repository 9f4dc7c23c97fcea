"""The Agents SDK `Model` interface over our `ChatModel`, so the SDK's Runner can drive the local GGUF.

The Runner asks the model for the next step; this model answers it in three ways:
- the last input item is the result of one of the agent's own tools: speak that result. The tools return
  a whole spoken sentence, and a 135M model restating facts gets them wrong more often than not;
- the request needs a tool or a handoff, as the agents' `Route`s decide (`pipelines.agents.routing`:
  the meaning of the request against each route's examples, the same router as the realtime path):
  return that function call (the Runner runs the tool or performs the handoff);
- otherwise: a text reply from the chat model, trimmed to whole sentences.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from agents import Handoff, Tool
from agents.agent_output import AgentOutputSchemaBase
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelProvider, ModelTracing
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from pipelines.agents.routing import Route, Router, answer_to_question, route
from pipelines.providers.base import ChatMessage, ChatModel, GenerationOptions
from pipelines.text.sentences import trim_to_last_sentence

NOT_HEARD_REPLY = "Sorry, I didn't catch that. Could you say it again?"


def _text_of(content: Any) -> str:
    """Message content is a string or a list of parts ({"type": "input_text"/"output_text", "text"})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict)).strip()
    return ""


def _item(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else value.model_dump(exclude_unset=True)


def chat_messages(system: str | None, items: list[dict[str, Any]]) -> list[ChatMessage]:
    """The conversation as plain chat messages; tool-call plumbing is left out (the model never sees it)."""
    messages = [ChatMessage("system", system or "")]
    for item in items:
        role = item.get("role")
        if role in ("user", "assistant") and item.get("type", "message") == "message":
            text = _text_of(item.get("content"))
            if text:
                messages.append(ChatMessage(role, text))
    return messages


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=f"msg_{uuid.uuid4().hex}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=[])],
    )


def _call(name: str, arguments: dict[str, Any]) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{uuid.uuid4().hex}",
        call_id=f"call_{uuid.uuid4().hex[:24]}",
        type="function_call",
        name=name,
        arguments=json.dumps(arguments),
        status="completed",
    )


class RoutedLocalModel(Model):
    """A local chat model that calls tools only when a `Route` says the request needs one."""

    def __init__(
        self, chat: ChatModel, options: GenerationOptions, routes: Router | Mapping[str, Route]
    ) -> None:
        self.chat, self.options = chat, options
        self.routes = routes if isinstance(routes, Router) else Router(routes)
        self.routes.warm()  # load the encoder and embed the examples before the first turn

    def _decide(
        self, system: str | None, items: list[dict[str, Any]], tools: list[Tool], handoffs: list[Handoff]
    ) -> tuple[list[Any], Usage]:
        own_tools = {t.name for t in tools}
        last = items[-1] if items else {}
        calls = {i.get("call_id"): i.get("name") for i in items if i.get("type") == "function_call"}
        if last.get("type") == "function_call_output" and calls.get(last.get("call_id")) in own_tools:
            text = trim_to_last_sentence(str(last.get("output", ""))) or NOT_HEARD_REPLY
            return [_message(text)], Usage(requests=0)
        handed_off = last.get("type") == "function_call_output"  # a handoff brought us here this run
        user = next((_text_of(i.get("content")) for i in reversed(items) if i.get("role") == "user"), "")
        if not user.strip():
            return [_message(NOT_HEARD_REPLY)], Usage(requests=0)
        available = own_tools | (set() if handed_off else {h.tool_name for h in handoffs})
        asked = next(
            (_text_of(i.get("content")) for i in reversed(items[:-1]) if i.get("role") == "assistant"), ""
        )
        decision = answer_to_question(user, asked, self.routes, own_tools) if asked else None
        decision = decision or route(user, self.routes, available)
        if decision is not None:
            if decision.arguments is None:
                return [_message(decision.missing)], Usage(requests=0)
            return [_call(decision.tool, decision.arguments)], Usage(requests=0)
        result = self.chat.complete(chat_messages(system, items), self.options)
        text = trim_to_last_sentence(result.text.strip()) or NOT_HEARD_REPLY
        usage = Usage(
            requests=1,
            input_tokens=result.prompt_tokens,
            output_tokens=result.completion_tokens,
            total_tokens=result.prompt_tokens + result.completion_tokens,
        )
        return [_message(text)], usage

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else [_item(i) for i in input]
        output, usage = await asyncio.to_thread(self._decide, system_instructions, items, tools, handoffs)
        return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the chained path runs the agent without streaming")


class LocalModelProvider(ModelProvider):
    """Every agent runs on the one local model, whatever `Agent.model` names."""

    def __init__(self, model: RoutedLocalModel) -> None:
        self.model = model

    def get_model(self, model_name: str | None) -> Model:
        return self.model
