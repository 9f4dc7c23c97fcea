"""Build the configured providers, once per process.

Workers call these in every task, so each provider is cached under the settings values that shape it:
the first call in a process loads the model, later calls return the same object. Build after forking
(in the task or in `worker_process_init`), never in a parent that forks afterwards: llama.cpp's and
onnxruntime's thread pools do not survive `fork()`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipelines.providers.base import ChatModel, SpeechToText, TextToSpeech
from pipelines.providers.moderation import Moderator
from pipelines.settings import Settings

if TYPE_CHECKING:
    from pipelines.providers.openai_client import Endpoint

T = TypeVar("T")

#: Names under which the bundled models are configured (`Settings.stt_model`, `llm_model`, `tts_voice`).
BUNDLED_STT_MODEL = "tiny.en"
BUNDLED_LLM_MODEL = "smollm2-135m-instruct"
BUNDLED_TTS_VOICE = "joe"


class ConfigError(ValueError):
    """The settings name a provider or model this process cannot build."""


_cache: dict[Hashable, Any] = {}
_cache_lock = threading.Lock()


def _cached(key: Hashable, build: Callable[[], T]) -> T:
    """`build()` once per key and process. The lock is held while loading, so two threads asking at
    the same time load the model once, not twice."""
    with _cache_lock:
        if key not in _cache:
            _cache[key] = build()
        result: T = _cache[key]
        return result


def clear_cache() -> None:
    """Drop every cached provider (tests, or a worker told to reload)."""
    with _cache_lock:
        _cache.clear()


def _openai_endpoint(settings: Settings, stage: str, model: str) -> Endpoint:
    """The OpenAI-compatible endpoint configured for `stage` (its own base_url and key, else the shared)."""
    from pipelines.providers.openai_client import Endpoint

    base_url, api_key = settings.openai_endpoint(stage)
    if base_url is None and api_key is None:
        raise ConfigError(
            f"{stage} uses provider 'openai' but neither VOICECHAIN_{stage.upper()}_OPENAI_BASE_URL nor "
            "VOICECHAIN_OPENAI_API_KEY (or VOICECHAIN_OPENAI_BASE_URL) is set"
        )
    return Endpoint(
        model=model,
        base_url=base_url,
        api_key=api_key,
        timeout_s=settings.openai_timeout_s,
        attempts=settings.openai_max_attempts,
    )


def _local_file(value: str, bundled_name: str, setting: str, bundled: Callable[[], Path]) -> Path:
    """The bundled model for its configured name, or an existing local path; never a download."""
    if value == bundled_name:
        return bundled()
    path = Path(value).expanduser()
    if path.exists():
        return path
    raise ConfigError(f"{setting}={value!r}: use {bundled_name!r} (bundled) or an existing local path")


def _default_cpu_threads() -> int:
    """Threads for STT and TTS, which have no setting of their own yet: CTranslate2 defaults to 4 and
    onnxruntime to every core, either of which oversubscribes a small machine."""
    return max(1, min(4, os.cpu_count() or 1))


def build_stt(settings: Settings, *, short_window_s: float | tuple[float, ...] = 0.0) -> SpeechToText:
    """The speech-to-text provider named by `settings.stt_provider`. `short_window_s` (local Whisper
    only; one window or several, a clip taking the smallest it fits in) trades a little certainty for
    speed; the realtime pool asks for it, stored transcripts do not."""
    if settings.stt_provider == "openai":
        from pipelines.providers.openai_stt import OpenAISpeechToText

        endpoint = _openai_endpoint(settings, "stt", settings.stt_model)
        return _cached(
            ("stt", endpoint, settings.stt_language),
            lambda: OpenAISpeechToText(endpoint, language=settings.stt_language),
        )
    from pipelines.providers.local_stt import WhisperSpeechToText, whisper_model_dir

    model_dir = _local_file(settings.stt_model, BUNDLED_STT_MODEL, "stt_model", whisper_model_dir)
    threads = _default_cpu_threads()
    shape = (
        settings.stt_compute_type,
        settings.stt_beam_size,
        settings.stt_language,
        threads,
        short_window_s,
    )
    return _cached(
        ("stt", model_dir, *shape),
        lambda: WhisperSpeechToText(
            model_dir,
            cpu_threads=threads,
            compute_type=settings.stt_compute_type,
            beam_size=settings.stt_beam_size,
            language=settings.stt_language,
            short_window_s=short_window_s,
        ),
    )


def build_chat_model(settings: Settings) -> ChatModel:
    """The chat model named by `settings.llm_provider`."""
    if settings.llm_provider == "openai":
        from pipelines.providers.openai_llm import OpenAIChatModel

        endpoint = _openai_endpoint(settings, "llm", settings.llm_model)
        return _cached(("llm", endpoint), lambda: OpenAIChatModel(endpoint))
    from pipelines.providers.local_llm import LlamaCppChatModel, gguf_path

    model_path = _local_file(settings.llm_model, BUNDLED_LLM_MODEL, "llm_model", gguf_path)
    key = ("llm", model_path, settings.llm_context_tokens, settings.llm_threads, settings.llm_seed)
    return _cached(
        key,
        lambda: LlamaCppChatModel(
            model_path,
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads,
            seed=settings.llm_seed,
        ),
    )


def build_tts(settings: Settings) -> TextToSpeech:
    """The text-to-speech provider named by `settings.tts_provider`."""
    if settings.tts_provider == "openai":
        from pipelines.providers.openai_tts import OpenAITextToSpeech

        endpoint = _openai_endpoint(settings, "tts", settings.tts_openai_model)
        return _cached(
            ("tts", endpoint, settings.tts_voice),
            lambda: OpenAITextToSpeech(endpoint, voice=settings.tts_voice),
        )
    from pipelines.providers.local_tts import PiperTextToSpeech, voice_paths

    model_path = _local_file(settings.tts_voice, BUNDLED_TTS_VOICE, "tts_voice", lambda: voice_paths()[0])
    threads = _default_cpu_threads()
    return _cached(("tts", model_path, threads), lambda: PiperTextToSpeech(model_path, threads=threads))


def build_moderator(settings: Settings) -> Moderator | None:
    """The moderation provider for the policy stage, or None when `moderation_provider` is "none"."""
    if settings.moderation_provider == "none":
        return None
    from pipelines.providers.openai_moderation import OpenAIModerator

    endpoint = _openai_endpoint(settings, "moderation", settings.moderation_model)
    return _cached(("moderation", endpoint), lambda: OpenAIModerator(endpoint))
