"""The `openai` text-to-speech provider against VoiceChain's own /v1/audio/speech (a real local server)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pipelines.providers.openai_client import Endpoint
from pipelines.providers.openai_stt import OpenAISpeechToText
from pipelines.providers.openai_tts import OpenAITextToSpeech
from tests.conftest import API_KEY, Stack

pytestmark = [pytest.mark.integration, pytest.mark.models]


def endpoint(stack: Stack, model: str) -> Endpoint:
    return Endpoint(model=model, base_url=stack.base_url + "/v1", api_key=API_KEY)


def test_streams_int16_pcm_that_transcribes_back(stack: Stack) -> None:
    import soxr

    tts = OpenAITextToSpeech(endpoint(stack, "tts-1"), voice="alloy")
    text = "Good morning. The train to London leaves at nine. Please take your ticket."
    chunks = list(tts.stream(text))
    assert len(chunks) >= 2, "audio should arrive in several chunks"
    assert all(c.dtype == np.int16 for c in chunks)
    speech = tts.synthesize("Good morning. The train to London leaves at nine.")
    assert speech.sample_rate == 24_000 and 1.5 < speech.duration_s < 10
    audio = soxr.resample(speech.samples.astype(np.float32) / 32768, 24_000, 16_000)
    heard = OpenAISpeechToText(endpoint(stack, "whisper-1")).transcribe(audio).text
    assert {"train", "london"} <= set(re.sub(r"[^a-z ]", " ", heard.lower()).split()), heard


def test_speed_is_passed_through(stack: Stack) -> None:
    tts = OpenAITextToSpeech(endpoint(stack, "tts-1"))
    normal = tts.synthesize("This sentence is spoken at two speeds.")
    fast = OpenAITextToSpeech(endpoint(stack, "tts-1"), speed=2.0).synthesize(
        "This sentence is spoken at two speeds."
    )
    assert fast.duration_s < normal.duration_s * 0.75
