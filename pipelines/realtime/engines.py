"""The models a realtime session runs on, bundled so tests can swap in fakes and a process loads them once."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipelines.providers.base import (
    ChatMessage,
    ChatModel,
    ChatResult,
    GenerationOptions,
    Speech,
    SpeechToText,
    TextToSpeech,
)
from pipelines.realtime.semantic import EndOfTurnModel
from pipelines.realtime.turns import VoiceActivity

if TYPE_CHECKING:
    from pipelines.settings import Settings

log = logging.getLogger(__name__)


class FairLock:
    """A FIFO lock with a priority lane. `threading.Lock` lets the LLM thread, which re-takes the lock
    after every token, win every race, so a sentence waiting for TTS waited for the whole reply; here it
    goes next in line. Work on the way to a reply's first audio (the user's transcript, the tokens and
    the speech of the first clause) takes `urgent()`, which goes before every plain waiter: with several
    sessions answering at once, each one's first words come before anyone's later sentences."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()
        self._urgent: collections.deque[object] = collections.deque()
        self._held = False

    def _acquire(self, queue: collections.deque[object]) -> None:
        me = object()
        with self._cond:
            queue.append(me)
            while self._held or (self._urgent[0] if self._urgent else self._queue[0]) is not me:
                self._cond.wait()
            queue.popleft()
            self._held = True

    def __enter__(self) -> None:
        self._acquire(self._queue)

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        self._acquire(self._urgent)
        try:
            yield
        finally:
            self.__exit__()

    def hold(self, urgent: bool) -> contextlib.AbstractContextManager[None]:
        return self.urgent() if urgent else self


@dataclass
class LlmSlot:
    """One LLM context (its own KV cache) and the lock of the reply generating on it.

    Sessions are spread over the slots; a session's prefills and replies use its own slot, so its
    conversation stays in that context's cache, and replies on different slots interleave token by
    token (under `compute`) instead of waiting for each other's last sentence."""

    chat: ChatModel
    generating: threading.Lock = field(default_factory=threading.Lock)
    sessions: int = 0


@dataclass
class Engines:
    """Shared by every session of a process; `make_vad` builds the per-session (stateful) VAD."""

    stt: SpeechToText
    chat: ChatModel
    tts: TextToSpeech
    make_vad: Callable[[], VoiceActivity]
    max_tokens: int = 96
    temperature: float = 0.2
    seed: int | None = 7
    stt_language: str | None = "en"
    #: One model computes at a time in a process. Each model already uses every core of a small machine;
    #: two at once (llama.cpp's spinning threads against CTranslate2's) made a 0.1 s step take seconds.
    #: The LLM takes it per token, so TTS of a finished sentence slots in between tokens.
    compute: FairLock = field(default_factory=FairLock)
    #: One reply is generated at a time. A local model keeps its state between the tokens of a stream
    #: (llama.cpp holds the model's own lock across them), so a second stream, a completion or a prefill
    #: that took `compute` and then waited for the model deadlocked against the first stream waiting for
    #: `compute` to write its next token (the bench hung with 4 sessions). Lock order: `generating`, then
    #: `compute`, then the model's own lock; STT and TTS take `compute` alone and still slot in between
    #: tokens.
    generating: threading.Lock = field(default_factory=threading.Lock)
    #: semantic_vad's end-of-turn model (Smart Turn); None: pauses are judged on the words alone. It runs
    #: outside `compute`: one thread for ~65 ms, beside the STT of the same pause on the other core.
    turn_model: EndOfTurnModel | None = None
    #: more contexts of the same LLM, one slot each beside `chat`'s (see `LlmSlot`)
    extra_chats: list[ChatModel] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.slots = [LlmSlot(self.chat, self.generating), *(LlmSlot(c) for c in self.extra_chats)]
        self._slots_lock = threading.Lock()

    def take_slot(self) -> LlmSlot:
        """The least used LLM slot, for a new session; give it back with `release_slot`."""
        with self._slots_lock:
            slot = min(self.slots, key=lambda s: s.sessions)
            slot.sessions += 1
            return slot

    def release_slot(self, slot: LlmSlot) -> None:
        with self._slots_lock:
            slot.sessions = max(0, slot.sessions - 1)

    def transcribe(self, audio: np.ndarray, prompt: str | None = None) -> str:
        """`prompt`: Whisper's initial prompt (the session's agent vocabulary), None for none."""
        with self.compute.urgent():  # the user's words are on the way to every first audio
            return self.stt.transcribe(audio, language=self.stt_language, prompt=prompt).text.strip()

    def complete(
        self, messages: Sequence[ChatMessage], options: GenerationOptions, slot: LlmSlot | None = None
    ) -> ChatResult:
        slot = slot or self.slots[0]
        with slot.generating, self.compute.urgent():
            return slot.chat.complete(messages, options)

    def prefill(self, messages: Sequence[ChatMessage], slot: LlmSlot | None = None) -> None:
        slot = slot or self.slots[0]
        with slot.generating, self.compute:
            slot.chat.prefill(messages)

    def synthesize(self, text: str, *, urgent: bool = False) -> Speech:
        with self.compute.hold(urgent):
            return self.tts.synthesize(text)

    def options(
        self, max_output_tokens: int | str, tools: Sequence[dict[str, object]] = ()
    ) -> GenerationOptions:
        limit = (
            self.max_tokens if max_output_tokens == "inf" else min(int(max_output_tokens), self.max_tokens)
        )
        return GenerationOptions(max_tokens=limit, temperature=self.temperature, seed=self.seed, tools=tools)


def _more_contexts(chat: ChatModel, settings: Settings, n: int) -> list[ChatModel]:
    """`n` more llama contexts of the local model (its weights are memory-mapped, so shared: each costs
    its KV cache, a few tens of MB). A remote model serves parallel requests itself: none needed."""
    from pipelines.providers.local_llm import LlamaCppChatModel

    if not isinstance(chat, LlamaCppChatModel) or n <= 0:
        return []
    return [
        LlamaCppChatModel(
            chat.model_path,
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads,
            seed=settings.llm_seed,
        )
        for _ in range(n)
    ]


#: LLM contexts per realtime process: replies of sessions on different contexts interleave
LLM_CONTEXTS = 4


def realtime_stt_windows(settings: Settings) -> tuple[float, ...]:
    """Whisper's short windows for live turns, smallest first; none when the short path is off (its
    largest window is 0), as `VOICECHAIN_REALTIME_STT_WINDOW_S=0` always meant."""
    if settings.realtime_stt_window_s <= 0:
        return ()
    small = settings.realtime_stt_small_window_s
    return tuple(sorted({settings.realtime_stt_window_s, *([small] if small > 0 else [])}))


def load_engines(settings: Settings, llm_contexts: int = LLM_CONTEXTS) -> Engines:
    """The configured providers (local models by default), loaded and warmed once per process."""
    from pipelines.providers.factory import build_chat_model, build_stt, build_tts
    from pipelines.providers.local_vad import SileroVAD
    from pipelines.providers.smart_turn import SmartTurn, TurnModelMissing

    settings = settings.model_copy(update={"llm_threads": settings.realtime_llm_threads})
    chat = build_chat_model(settings)
    engines = Engines(
        stt=build_stt(settings, short_window_s=realtime_stt_windows(settings)),
        chat=chat,
        extra_chats=_more_contexts(chat, settings, llm_contexts - 1),
        tts=build_tts(settings),
        make_vad=SileroVAD,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        seed=settings.llm_seed,
        stt_language=settings.stt_language,
    )
    try:
        engines.turn_model = SmartTurn()
    except TurnModelMissing as exc:  # semantic_vad still works, judging pauses on the words alone
        log.warning("%s; semantic_vad judges pauses without it", exc)
    # Warm-up: the first call of each model pays lazy initialisation; pay it before the first user does.
    engines.stt.transcribe(np.zeros(16_000, dtype=np.float32), language=engines.stt_language)
    engines.tts.synthesize("Hello.")
    SileroVAD().probability(np.zeros(512, dtype=np.float32))
    if engines.turn_model is not None:
        engines.turn_model.probability(np.zeros(16_000, dtype=np.float32))
    return engines


async def stream_in_thread(
    chat: ChatModel,
    messages: Sequence[ChatMessage],
    options: GenerationOptions,
    stop: threading.Event,
    compute: FairLock | None = None,
    generating: threading.Lock | None = None,
    urgent: Callable[[], bool] | None = None,
) -> AsyncIterator[str]:
    """Iterate a blocking token stream from a worker thread, so the event loop keeps reading frames.

    Setting `stop` (or closing this iterator) makes the thread close the model's generator after the
    current token, which releases the model for the next session at once. The thread holds
    `generating` for the whole stream and `compute` for each token (see `Engines.generating`), in
    its priority lane while `urgent()` says the first clause is not out yet.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
    halt = threading.Event()  # this iterator was closed; `stop` belongs to the caller and stays as it is

    def put(item: str | BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # loop closed: the session is gone, nobody is listening
            halt.set()

    def work() -> None:
        exclusive = generating or threading.Lock()
        while not exclusive.acquire(timeout=0.05):  # another reply is being generated
            if stop.is_set() or halt.is_set():
                put(None)
                return
        try:
            stream()
        finally:
            exclusive.release()

    def stream() -> None:
        gen = chat.stream(messages, options)
        lock = compute or FairLock()
        try:
            while not (stop.is_set() or halt.is_set()):
                with lock.hold(urgent is not None and urgent()):
                    delta = next(gen, None)
                if delta is None:
                    break
                put(delta)
        except BaseException as exc:  # handed to the event loop, re-raised there
            put(exc)
            return
        finally:
            close = getattr(gen, "close", None)  # a generator: closing it releases the model's own lock
            if close is not None:
                close()
        put(None)

    future = loop.run_in_executor(None, work)
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        halt.set()
        future.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
