"""Deterministic stand-ins for the models, so session logic is tested without loading any."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np

from pipelines.providers.base import (
    ChatMessage,
    ChatModel,
    ChatResult,
    GenerationOptions,
    SpeechToText,
    TextToSpeech,
    ToolCall,
    Transcript,
)
from pipelines.realtime.engines import Engines


class LoudnessVAD:
    """Speech is any frame louder than -40 dBFS."""

    def probability(self, frame: np.ndarray) -> float:
        return 1.0 if float(np.sqrt(np.mean(frame**2))) > 0.01 else 0.0

    def reset(self) -> None:
        pass


class FixedSTT(SpeechToText):
    name = "fake"

    def __init__(self, text: str = "What is the weather like?", delay_s: float = 0.0) -> None:
        self.text, self.delay_s, self.calls = text, delay_s, 0

    def _transcribe_impl(self, audio: np.ndarray, *, language: str | None, prompt: str | None) -> Transcript:
        self.calls += 1
        time.sleep(self.delay_s)
        return Transcript(text=self.text, language="en", duration_s=len(audio) / 16_000)


class ScriptedChat(ChatModel):
    """Streams `reply` word by word; with tools offered, calls `tool_call` once, then answers.

    Like llama.cpp, it holds its own lock for a whole stream (across yields) and for each completion or
    prefill: a model has one state, and callers must not interleave two generations on it."""

    name = "fake"

    def __init__(
        self, reply: str = "It is sunny. Take a hat. Enjoy your day.", token_delay_s: float = 0.0
    ) -> None:
        self.reply, self.token_delay_s = reply, token_delay_s
        self.tool_call: ToolCall | None = None
        self.seen: list[list[ChatMessage]] = []
        self.prefilled: list[list[ChatMessage]] = []
        self.lock = threading.Lock()

    def prefill(self, messages: Sequence[ChatMessage]) -> None:
        with self.lock:
            self.prefilled.append(list(messages))

    def _complete_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> ChatResult:
        with self.lock:
            return self._answer(messages, options)

    def _answer(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> ChatResult:
        self.seen.append(list(messages))
        if options.tools and self.tool_call and not any(m.role == "tool" for m in messages):
            return ChatResult(text="", tool_calls=(self.tool_call,))
        return ChatResult(text=self.reply, completion_tokens=len(self.reply.split()))

    def _stream_impl(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        with self.lock:
            self.seen.append(list(messages))
            for i, word in enumerate(self.reply.split(" ")):
                time.sleep(self.token_delay_s)
                yield word if i == 0 else " " + word


class ToneTTS(TextToSpeech):
    """80 ms of 440 Hz per word at 22,050 Hz, so audio length tracks the text."""

    name = "fake"
    sample_rate = 22_050

    def _stream_impl(self, text: str) -> Iterator[np.ndarray]:
        n = int(self.sample_rate * 0.08 * max(1, len(text.split())))
        t = np.arange(n) / self.sample_rate
        yield (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)


def fake_engines(**chat_kwargs: object) -> Engines:
    return Engines(stt=FixedSTT(), chat=ScriptedChat(**chat_kwargs), tts=ToneTTS(), make_vad=LoudnessVAD)  # type: ignore[arg-type]


def tone_pcm24(seconds: float, amplitude: float = 0.3) -> bytes:
    """Voice-like loud audio as 24 kHz PCM16 bytes."""
    t = np.arange(int(24_000 * seconds)) / 24_000
    return (np.sin(2 * np.pi * 220 * t) * amplitude * 32767).astype("<i2").tobytes()


def silence_pcm24(seconds: float) -> bytes:
    return bytes(2 * int(24_000 * seconds))
