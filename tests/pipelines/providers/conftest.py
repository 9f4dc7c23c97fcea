"""Session-scoped providers: each embedded model loads once per test session, through the factory, so the
per-process cache is exercised as the workers use it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import soxr

from pipelines.providers import factory
from pipelines.providers.base import ChatModel, SpeechToText, TextToSpeech
from pipelines.providers.local_tts import PiperTextToSpeech
from pipelines.settings import Settings

QUESTION = "What is the weather like in Paris today?"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The local providers with the bundled models, whatever VOICECHAIN_* says in the shell."""
    return Settings.model_validate(  # every field the factory reads is pinned; the rest may come from env
        {
            "stt_provider": "local",
            "stt_model": factory.BUNDLED_STT_MODEL,
            "stt_compute_type": "int8",
            "stt_beam_size": 1,
            "stt_language": "en",
            "llm_provider": "local",
            "llm_model": factory.BUNDLED_LLM_MODEL,
            "llm_threads": 1,  # OpenMP threads that spin collapse when tests share the CPU (see FACTS)
            "llm_context_tokens": 2048,
            "llm_seed": 7,
            "tts_provider": "local",
            "tts_voice": factory.BUNDLED_TTS_VOICE,
        }
    )


@pytest.fixture(scope="session")
def _clean_factory() -> Iterator[None]:
    factory.clear_cache()
    yield
    factory.clear_cache()


@pytest.fixture(scope="session")
def tts(settings: Settings, _clean_factory: None) -> TextToSpeech:
    return factory.build_tts(settings)


@pytest.fixture(scope="session")
def stt(settings: Settings, _clean_factory: None) -> SpeechToText:
    return factory.build_stt(settings)


@pytest.fixture(scope="session")
def chat(settings: Settings, _clean_factory: None) -> ChatModel:
    return factory.build_chat_model(settings)


@pytest.fixture(scope="session")
def question_16k() -> np.ndarray:
    """The question spoken by piper, as float32 at 16 kHz (what STT and VAD take).

    Spoken without piper's random noise: with it, about 1 take in 25 comes out as "pairs" for "Paris"
    in Whisper tiny.en, and a test must not depend on that draw.
    """
    speech = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0).synthesize(QUESTION)
    audio = speech.samples.astype(np.float32) / 32768.0
    resampled = soxr.resample(audio, speech.sample_rate, 16_000)
    return np.asarray(resampled, dtype=np.float32)
