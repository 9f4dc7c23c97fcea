"""SmolLM2 through llama.cpp: whole-sentence replies, streamed or not."""

from __future__ import annotations

import pytest

from pipelines.providers.base import ChatMessage, ChatModel, GenerationOptions, ProviderError
from pipelines.providers.local_llm import LlamaCppChatModel, gguf_path

pytestmark = pytest.mark.models

SYSTEM = ChatMessage("system", "You are a helpful voice assistant. Answer in one or two short sentences.")
OPTIONS_SHORT = GenerationOptions(max_tokens=24, temperature=0.0)
ENDINGS = (".", "!", "?", '."', '!"', '?"')


def _ask(question: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage("user", question)]


def test_gguf_is_found_without_importing_its_package() -> None:
    path = gguf_path()
    assert path.is_file()
    assert path.suffix == ".gguf"


def test_uses_the_chatml_template_from_the_gguf(chat: ChatModel) -> None:
    assert isinstance(chat, LlamaCppChatModel)
    assert chat.name == "local"
    assert chat.chat_format == "chat_template.default"
    assert "<|im_start|>" in chat._llm.metadata["tokenizer.chat_template"]


def test_answers_with_whole_sentences(chat: ChatModel) -> None:
    result = chat.complete(_ask("What is the capital of France?"), GenerationOptions(max_tokens=64))
    assert result.text
    assert result.text.endswith(ENDINGS)
    assert result.tool_calls == ()
    assert result.prompt_tokens > 0
    assert 0 < result.completion_tokens <= 64


def test_a_reply_cut_by_max_tokens_is_trimmed_to_a_sentence(chat: ChatModel) -> None:
    result = chat.complete(_ask("Describe Paris in detail."), GenerationOptions(max_tokens=40))
    assert result.finish_reason == "length"
    assert result.text.endswith(ENDINGS)


def test_stream_joins_to_the_complete_reply(chat: ChatModel) -> None:
    messages = _ask("What is the capital of France?")
    options = GenerationOptions(max_tokens=64, seed=11)
    chat.complete(messages, options)  # the prompt cache now holds this prompt, as it will for the next two
    expected = chat.complete(messages, options)
    deltas = list(chat.stream(messages, options))
    assert len(deltas) >= 3
    assert all(deltas)
    assert "".join(deltas).strip() == expected.text
    assert expected.finish_reason == "stop"


def test_without_prompt_cache_reuse_replies_are_reproducible() -> None:
    model = LlamaCppChatModel(n_ctx=512, n_threads=1, reuse_prompt_cache=False)
    messages = _ask("What is the capital of France?")
    options = GenerationOptions(max_tokens=96, temperature=0.7, seed=3)
    first = model.complete(messages, options)
    streamed = "".join(model.stream(messages, options)).strip()
    model.complete(_ask("What is two plus two?"), GenerationOptions(max_tokens=1))  # something in between
    again = model.complete(messages, options)
    assert first.finish_reason == "stop"
    assert first.text == again.text == streamed


def test_context_is_padded_like_llama_cpp_and_overflow_is_a_permanent_error() -> None:
    model = LlamaCppChatModel(n_ctx=100, n_threads=1)
    assert model.n_ctx == 256  # what llama.cpp allocates anyway
    fits_padded = model.complete(_ask("Paris " * 110), GenerationOptions(max_tokens=1))
    assert fits_padded.prompt_tokens > 100
    too_long = _ask("Paris " * 400)
    with pytest.raises(ProviderError) as raised:
        model.complete(too_long, GenerationOptions(max_tokens=4))
    assert not raised.value.transient
    with pytest.raises(ProviderError):
        list(model.stream(too_long, GenerationOptions(max_tokens=4)))


def test_prefill_puts_the_conversation_in_the_prompt_cache() -> None:
    """After `prefill(history)`, the request for history + new words evaluates only the new words."""
    model = LlamaCppChatModel(n_ctx=512, n_threads=1)
    history = [SYSTEM, ChatMessage("user", "Hi there."), ChatMessage("assistant", "Hello! How can I help?")]
    model.prefill(history)
    llm = model._llm
    cached = list(llm._input_ids[: llm.n_tokens])
    assert len(cached) > 20
    evaluated: list[int] = []
    original_eval = llm.eval

    def counting_eval(tokens):  # type: ignore[no-untyped-def]
        evaluated.extend(tokens)
        return original_eval(tokens)

    llm.eval = counting_eval  # type: ignore[method-assign]
    reply = model.complete([*history, ChatMessage("user", "What is the capital of France?")], OPTIONS_SHORT)
    assert reply.text
    prompt_ids = list(llm._input_ids[: len(cached)])
    assert prompt_ids == cached  # the whole prefilled prefix was kept
    # the prompt's own new part is small: the new user message and the generation prompt, ~20 tokens
    prompt_part = len(evaluated) - reply.completion_tokens
    assert prompt_part < 30, prompt_part


def test_prefill_of_a_prompt_beyond_the_context_is_skipped_quietly() -> None:
    model = LlamaCppChatModel(n_ctx=256, n_threads=1)
    model.prefill([SYSTEM, ChatMessage("user", "word " * 400)])  # the real request will report it
    assert model.complete(_ask("Hi."), OPTIONS_SHORT).text
