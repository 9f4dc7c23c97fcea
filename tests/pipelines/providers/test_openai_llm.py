"""The `openai` chat provider against llama-cpp-python's OpenAI-compatible server (`llama_cpp.server`),
started here on a free loopback port with the bundled SmolLM2 GGUF."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from api.cli.embedded_redis import free_port
from pipelines.providers.base import ChatMessage, GenerationOptions, ProviderError
from pipelines.providers.local_llm import gguf_path
from pipelines.providers.openai_client import Endpoint
from pipelines.providers.openai_llm import OpenAIChatModel
from tests.services import unavailable, wait_http_ok

pytestmark = [pytest.mark.integration, pytest.mark.models]

SERVER_KEY = "llama-test-key"
MESSAGES = [
    ChatMessage("system", "You are a helpful assistant. Answer in one short sentence."),
    ChatMessage("user", "What is the capital of France?"),
]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        import llama_cpp.server.app  # noqa: F401  (the [server] extra's dependencies)
    except ImportError as exc:
        unavailable(f"llama-cpp-python[server] is not installed: {exc}")
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--api_key", SERVER_KEY],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/docs", timeout_s=60)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(20)


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
