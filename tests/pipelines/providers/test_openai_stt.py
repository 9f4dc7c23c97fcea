"""The `openai` speech-to-text provider against a real OpenAI-compatible server: VoiceChain's own
/v1/audio/transcriptions on the test stack (never the internet)."""

from __future__ import annotations

import re

import pytest

from pipelines.audio.decode import decode_to_mono
from pipelines.providers.base import ProviderError
from pipelines.providers.openai_client import Endpoint
from pipelines.providers.openai_stt import OpenAISpeechToText
from pipelines.settings import Settings
from tests.conftest import API_KEY, Stack

pytestmark = [pytest.mark.integration, pytest.mark.models]


def words(text: str) -> set[str]:
    return set(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def test_transcribes_through_the_audio_api(stack: Stack, speech) -> None:
    stt = OpenAISpeechToText(Endpoint(model="whisper-1", base_url=stack.base_url + "/v1", api_key=API_KEY))
    audio = decode_to_mono(
        speech.wav("What is the capital of France?").read_bytes(), target_rate=16_000, max_seconds=60
    )
    transcript = stt.transcribe(audio, language="en")
    assert {"capital", "france"} <= words(transcript.text), transcript.text
    assert transcript.language == "en" and transcript.duration_s > 1 and transcript.segments


def test_a_bad_key_fails_at_once_and_a_dead_server_is_transient(stack: Stack) -> None:
    import numpy as np

    audio = np.zeros(16_000, dtype=np.float32)
    bad_key = OpenAISpeechToText(Endpoint(model="whisper-1", base_url=stack.base_url + "/v1", api_key="nope"))
    with pytest.raises(ProviderError, match="401") as refused:
        bad_key.transcribe(audio)
    assert not refused.value.transient

    from api.cli.embedded_redis import free_port

    dead = OpenAISpeechToText(
        Endpoint(model="whisper-1", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=2, attempts=2)
    )
    with pytest.raises(ProviderError) as unreachable:
        dead.transcribe(audio)
    assert unreachable.value.transient


def test_factory_builds_it_from_per_stage_settings(stack: Stack) -> None:
    from pipelines.providers import factory

    settings = Settings.model_validate(
        {"stt_provider": "openai", "stt_model": "whisper-1", "stt_openai_base_url": stack.base_url + "/v1",
         "stt_openai_api_key": API_KEY, "openai_timeout_s": 7, "openai_max_attempts": 2}
    )  # fmt: skip
    stt = factory.build_stt(settings)
    assert isinstance(stt, OpenAISpeechToText)
    assert stt.endpoint.timeout_s == 7 and stt.retry.attempts == 2 and stt.endpoint.api_key == API_KEY
