"""One base class per kind of model (speech-to-text, chat, text-to-speech).

The public method of each base owns what every vendor needs the same way: a deadline, retries of
transient errors with backoff and jitter, and the duration metric. A provider implements only the
`_..._impl` method, in the manner of livekit-agents' `recognize()` / `_recognize_impl()`.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
from prometheus_client import Histogram

T = TypeVar("T")

PROVIDER_SECONDS = Histogram(
    "voicechain_provider_seconds",
    "Time spent inside a model provider call, by kind and provider.",
    ["kind", "provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class ProviderError(Exception):
    """A provider call failed. `transient` says whether trying again can help (timeouts, 429, 5xx)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; only `ProviderError(transient=True)` is retried."""

    attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *, kind: str, provider: str) -> T:
    """Run `fn`, retrying transient provider errors, and record the duration of the whole call."""
    started = time.perf_counter()
    try:
        for attempt in range(policy.attempts):
            try:
                return fn()
            except ProviderError as exc:
                if not exc.transient or attempt == policy.attempts - 1:
                    raise
                time.sleep(policy.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        PROVIDER_SECONDS.labels(kind, provider).observe(time.perf_counter() - started)


# --- speech to text --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None
    duration_s: float
    segments: tuple[Segment, ...] = ()


class SpeechToText(ABC):
    """Audio in (float32 mono at `sample_rate`), text out."""

    name: str = "base"
    sample_rate: int = 16_000
    retry = RetryPolicy()

    def transcribe(
        self, audio: np.ndarray, *, language: str | None = None, prompt: str | None = None
    ) -> Transcript:
        return call_with_retries(
            lambda: self._transcribe_impl(audio, language=language, prompt=prompt),
            self.retry,
            kind="stt",
            provider=self.name,
        )

    @abstractmethod
    def _transcribe_impl(self, audio: np.ndarray, *, language: str | None, prompt: str | None) -> Transcript:
        """Transcribe float32 mono audio at `self.sample_rate`."""


# --- chat -------------------------------------------------------------------------------------------


Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    name: str | None = None
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the OpenAI APIs carry it


@dataclass(frozen=True)
class ChatResult:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 96
    temperature: float = 0.2
    seed: int | None = None
    tools: Sequence[dict[str, Any]] = field(default_factory=tuple)  # OpenAI function-tool schemas


class ChatModel(ABC):
    """Messages in, a reply (text and/or tool calls) out; `stream` yields text deltas as generated."""

    name: str = "base"
    retry = RetryPolicy()

    def complete(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> ChatResult:
        return call_with_retries(
            lambda: self._complete_impl(messages, options), self.retry, kind="llm", provider=self.name
        )

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        """Text deltas. Not retried: a stream that broke mid-way has already been partly consumed."""
        started = time.perf_counter()
        try:
            yield from self._stream_impl(messages, options)
        finally:
            PROVIDER_SECONDS.labels("llm_stream", self.name).observe(time.perf_counter() - started)

    def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate the start of the next prompt ahead of time, while the user is still speaking, so the
        reply only has to read the new words. A hint: models without a local prompt cache ignore it."""
        return None

    @abstractmethod
    def _complete_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> ChatResult: ...

    @abstractmethod
    def _stream_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]: ...


# --- text to speech ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # int16 mono
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


class TextToSpeech(ABC):
    """Text in, int16 mono audio out; `stream` yields one chunk per sentence as soon as it is ready."""

    name: str = "base"
    sample_rate: int = 22_050
    retry = RetryPolicy()

    def synthesize(self, text: str) -> Speech:
        def run() -> Speech:
            chunks = list(self._stream_impl(text))
            samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
            return Speech(samples=samples.astype(np.int16, copy=False), sample_rate=self.sample_rate)

        return call_with_retries(run, self.retry, kind="tts", provider=self.name)

    def stream(self, text: str) -> Iterator[np.ndarray]:
        started = time.perf_counter()
        try:
            yield from self._stream_impl(text)
        finally:
            PROVIDER_SECONDS.labels("tts_stream", self.name).observe(time.perf_counter() - started)

    @abstractmethod
    def _stream_impl(self, text: str) -> Iterator[np.ndarray]:
        """Yield int16 mono chunks at `self.sample_rate`, one per sentence or smaller."""
