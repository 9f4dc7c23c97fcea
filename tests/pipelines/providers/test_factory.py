"""Provider factory: local models built once per process, clear errors for what is not there yet."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipelines.providers import factory
from pipelines.providers.base import ChatModel, SpeechToText, TextToSpeech
from pipelines.settings import Settings


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (factory.build_stt, "stt_provider"),
        (factory.build_chat_model, "llm_provider"),
        (factory.build_tts, "tts_provider"),
    ],
)
def test_openai_needs_an_endpoint_and_then_builds(build: Callable[[Settings], object], field: str) -> None:
    unset = {"openai_base_url": None, "openai_api_key": None}
    stage = field.removesuffix("_provider")
    settings = Settings.model_validate({**unset, field: "openai", f"{stage}_openai_base_url": None})
    with pytest.raises(factory.ConfigError, match="OPENAI_BASE_URL"):
        build(settings)
    configured = settings.model_copy(update={f"{stage}_openai_base_url": "http://127.0.0.1:9/v1"})
    assert getattr(build(configured), "name", None) == "openai"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (factory.build_stt, "stt_model"),
        (factory.build_chat_model, "llm_model"),
        (factory.build_tts, "tts_voice"),
    ],
)
def test_unknown_model_names_are_refused_not_downloaded(
    build: Callable[[Settings], object], field: str
) -> None:
    local = {"stt_provider": "local", "llm_provider": "local", "tts_provider": "local"}
    settings = Settings.model_validate({**local, field: "large-v3"})
    with pytest.raises(factory.ConfigError, match="large-v3"):
        build(settings)


@pytest.mark.models
def test_each_provider_is_built_once_per_process(
    settings: Settings, stt: SpeechToText, chat: ChatModel, tts: TextToSpeech
) -> None:
    copy = settings.model_copy()
    assert factory.build_stt(copy) is stt
    assert factory.build_chat_model(copy) is chat
    assert factory.build_tts(copy) is tts
    assert stt.name == chat.name == tts.name == "local"
