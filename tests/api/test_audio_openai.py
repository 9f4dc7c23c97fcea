"""VoiceChain's /v1/audio endpoints, driven by the official `openai` client pointed at the test stack."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import openai
import pytest
import soundfile
from openai import OpenAI

from tests.conftest import API_KEY, Stack

pytestmark = [pytest.mark.integration, pytest.mark.models]

QUESTION = "What is the capital of France?"


def words(text: str) -> set[str]:
    return set(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def client(stack: Stack) -> OpenAI:
    return OpenAI(base_url=stack.base_url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def question(speech):
    return speech.wav(QUESTION)


def decoded_seconds(data: bytes) -> float:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == 24_000
    assert float(np.sqrt(np.mean(samples**2))) > 0.01, "speech should not be silence"
    return len(samples) / rate


def test_transcription_json_and_text(client: OpenAI, question) -> None:
    with question.open("rb") as handle:
        result = client.audio.transcriptions.create(model="whisper-1", file=handle)
    assert {"capital", "france"} <= words(result.text), result.text
    text = client.audio.transcriptions.create(
        model="whisper-1", file=question, response_format="text", language="en"
    )
    assert isinstance(text, str) and {"capital", "france"} <= words(text)


def test_transcription_verbose_json_with_words_and_segments(client: OpenAI, question) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=question,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "en" and result.duration > 1.0
    assert result.segments and result.segments[0].end > result.segments[0].start
    assert result.words and [w.word.lower().strip("?.,") for w in result.words][-1] == "france"
    assert all(w.end >= w.start for w in result.words)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_transcription_subtitles(client: OpenAI, question, fmt: str) -> None:
    body = client.audio.transcriptions.create(model="whisper-1", file=question, response_format=fmt)
    assert isinstance(body, str) and "france" in body.lower()
    timing = r"\d\d:\d\d:\d\d,\d\d\d --> " if fmt == "srt" else r"\d\d:\d\d:\d\d\.\d\d\d --> "
    assert re.search(timing, body), body
    assert body.startswith("1\n") if fmt == "srt" else body.startswith("WEBVTT")


def test_transcription_stream(client: OpenAI, question) -> None:
    stream = client.audio.transcriptions.create(model="whisper-1", file=question, stream=True)
    events = list(stream)
    assert [e.type for e in events][-1] == "transcript.text.done"
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas.strip() == events[-1].text and {"capital", "france"} <= words(events[-1].text)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_speech_every_container_format(client: OpenAI, fmt: str) -> None:
    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello there. This is VoiceChain speaking.", response_format=fmt
    )
    assert 1.5 < decoded_seconds(response.content) < 8


def test_speech_aac(client: OpenAI) -> None:
    from tests.pipelines.audio.test_stream_encoder import aac_seconds

    response = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello there. This is VoiceChain speaking.", response_format="aac"
    )
    assert response.response.headers["content-type"].startswith("audio/aac")
    seconds, rate = aac_seconds(response.content)
    assert rate == 24_000 and 1.5 < seconds < 8


def test_speech_pcm_is_24khz_int16(client: OpenAI) -> None:
    response = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.", response_format="pcm")
    samples = np.frombuffer(response.content, dtype="<i2")
    assert response.response.headers["content-type"].startswith("audio/pcm")
    assert 0.3 < len(samples) / 24_000 < 3 and np.abs(samples).max() > 1000


def test_speech_streams_sentence_by_sentence(client: OpenAI) -> None:
    text = " ".join(f"This is sentence number {n}, spoken on its own." for n in range(1, 7))
    started = time.perf_counter()
    arrivals: list[float] = []
    body = b""
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="pcm"
    ) as response:
        assert response.headers["content-type"].startswith("audio/pcm")
        for chunk in response.iter_bytes():
            arrivals.append(time.perf_counter() - started)
            body += chunk
    assert len(arrivals) >= 3, "the body should arrive in several pieces"
    assert arrivals[0] < arrivals[-1] * 0.8, arrivals
    assert len(body) / 2 / 24_000 > 10  # six sentences of speech


def test_speech_to_text_round_trip_and_speed(client: OpenAI) -> None:
    spoken = client.audio.speech.create(
        model="tts-1", voice="alloy", input="The weather in Paris is sunny today.", response_format="wav"
    ).content
    fast = client.audio.speech.create(
        model="tts-1", voice="alloy", input="The weather in Paris is sunny today.", response_format="wav",
        speed=2.0,
    ).content  # fmt: skip
    assert decoded_seconds(fast) < decoded_seconds(spoken) * 0.75
    heard = client.audio.transcriptions.create(model="whisper-1", file=("reply.wav", spoken, "audio/wav"))
    assert {"weather", "paris", "sunny"} <= words(heard.text), heard.text


def test_errors_are_openai_shaped(client: OpenAI, stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as too_long:
        client.audio.speech.create(model="tts-1", voice="alloy", input="a" * 4097)
    assert too_long.value.body["code"] == "invalid_value" and too_long.value.body["param"] == "input"

    with pytest.raises(openai.BadRequestError) as unknown:
        client.audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format="m4a")  # type: ignore[arg-type]
    assert unknown.value.body["param"] == "response_format"

    with pytest.raises(openai.BadRequestError) as bad_transcript_format:
        client.audio.transcriptions.create(
            model="whisper-1",
            file=("a.wav", b"RIFF", "audio/wav"),
            response_format="xml",  # type: ignore[arg-type]
        )
    assert bad_transcript_format.value.body["param"] == "response_format"

    with pytest.raises(openai.APIStatusError) as not_audio:
        client.audio.transcriptions.create(
            model="whisper-1", file=("notes.wav", b"this is not audio at all " * 40, "audio/wav")
        )
    assert not_audio.value.status_code == 415 and not_audio.value.body["code"] == "not_audio"

    with pytest.raises(openai.UnprocessableEntityError) as empty:
        client.audio.transcriptions.create(model="whisper-1", file=("empty.wav", b"", "audio/wav"))
    assert empty.value.body["code"] == "empty_file"

    anonymous = OpenAI(base_url=stack.base_url + "/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as wrong_key:
        anonymous.audio.speech.create(model="tts-1", voice="alloy", input="hi")
    assert wrong_key.value.body["code"] == "invalid_api_key"


def test_no_key_is_refused(stack: Stack) -> None:
    import httpx

    for path in ("/v1/audio/speech", "/v1/audio/transcriptions"):
        response = httpx.post(stack.base_url + path, json={"model": "x", "input": "hi", "voice": "alloy"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"
