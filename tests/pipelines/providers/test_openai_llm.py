"""The `openai` chat provider against llama-cpp-python's OpenAI-compatible server (`llama_cpp.server`),
started here on a free loopback port with the bundled SmolLM2 GGUF."""

from __future__ import annotations

import pytest

from pipelines.providers.base import ChatMessage, GenerationOptions, ProviderError
from pipelines.providers.openai_client import Endpoint
from pipelines.providers.openai_llm import OpenAIChatModel
from tests.services import LLAMA_SERVER_KEY as SERVER_KEY

pytestmark = [pytest.mark.integration, pytest.mark.models]

MESSAGES = [
    ChatMessage("system", "You are a helpful assistant. Answer in one short sentence."),
    ChatMessage("user", "What is the capital of France?"),
]


def test_complete_and_stream(llama_server: str) -> None:
    chat = OpenAIChatModel(Endpoint(model="smollm2", base_url=llama_server, api_key=SERVER_KEY, timeout_s=60))
    options = GenerationOptions(max_tokens=40, temperature=0.0, seed=7)
    result = chat.complete(MESSAGES, options)
    assert result.text and "paris" in result.text.lower(), result.text
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    deltas = list(chat.stream(MESSAGES, options))
    assert len(deltas) > 3, "a streamed reply arrives in several deltas"
    assert "paris" in "".join(deltas).lower()


def test_a_refused_request_is_not_retried(llama_server: str) -> None:
    """A wrong key is a 4xx: it fails at once. (llama_cpp.server answers a malformed body with 500, so
    that would count as transient; the key is the 4xx it reliably gives.)"""
    chat = OpenAIChatModel(Endpoint(model="smollm2", base_url=llama_server, api_key="wrong", attempts=3))
    with pytest.raises(ProviderError) as refused:
        chat.complete(MESSAGES, GenerationOptions())
    assert not refused.value.transient and "HTTP 401" in str(refused.value)
    with pytest.raises(ProviderError, match="HTTP 401"):
        list(chat.stream(MESSAGES, GenerationOptions()))
