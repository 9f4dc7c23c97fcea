"""Chat through any server speaking OpenAI's Chat Completions (OpenAI, vLLM, Ollama, llama.cpp's
server, llama-cpp-python's `llama_cpp.server`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pipelines.providers.base import (
    ChatMessage,
    ChatModel,
    ChatResult,
    GenerationOptions,
    ProviderError,
    ToolCall,
)
from pipelines.providers.openai_client import Endpoint, guarded, to_provider_error


def _message(message: ChatMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None and message.role != "tool":
        payload["name"] = message.name
    if message.tool_call_id is not None:
        payload["tool_call_id"] = message.tool_call_id
    return payload


class OpenAIChatModel(ChatModel):
    """Chat Completions, blocking or streamed. The agent stage can also reach this server through the
    Agents SDK's `OpenAIChatCompletionsModel` with the same base_url and key."""

    name = "openai"

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.retry = endpoint.retry_policy()
        self._client = endpoint.client()

    def _arguments(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": [_message(m) for m in messages],
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }
        if options.seed is not None:
            arguments["seed"] = options.seed
        if options.tools:
            arguments["tools"] = list(options.tools)
        return arguments

    def _complete_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> ChatResult:
        response = guarded(
            "openai chat", lambda: self._client.chat.completions.create(**self._arguments(messages, options))
        )
        if not response.choices:
            raise ProviderError("openai chat: the reply has no choices", transient=True)
        choice = response.choices[0]
        calls = tuple(
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments or "{}")
            for call in (choice.message.tool_calls or ())
            if getattr(call, "function", None) is not None
        )
        usage = response.usage
        return ChatResult(
            text=(choice.message.content or "").strip(),
            tool_calls=calls,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason or "stop",
        )

    def _stream_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        import openai

        stream = guarded(
            "openai chat stream",
            lambda: self._client.chat.completions.create(**self._arguments(messages, options), stream=True),
        )
        try:
            with stream:
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except openai.OpenAIError as exc:
            raise to_provider_error(exc, "openai chat stream") from exc
