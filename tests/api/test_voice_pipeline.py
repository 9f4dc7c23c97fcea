"""The OpenAI Agents SDK's `VoicePipeline`, pointed at the API with `OpenAIVoiceModelProvider(base_url=...)`
only, as its users run it: with `StreamedAudioInput` (its live microphone path: a realtime transcription
session over `WS /v1/realtime?intent=transcription` on the API origin, relayed to the pool) and with
`AudioInput` (`POST /v1/audio/transcriptions`); the replies are spoken by `POST /v1/audio/speech`.

The workflow answers without a remote LLM (it repeats what it heard), so the test is about the voice
path. The questions are spoken by espeak-ng, a voice the models were not tuned on.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import soxr
from agents.voice import (
    AudioInput,
    OpenAIVoiceModelProvider,
    StreamedAudioInput,
    VoicePipeline,
    VoicePipelineConfig,
    VoiceWorkflowBase,
)

from tests.conftest import API_KEY
from tests.services import unavailable

pytestmark = pytest.mark.integration

SENTENCES = ("Please turn on the kitchen lights.", "What time does the train leave tomorrow?")
KEYWORDS = ("kitchen", "train")


class Repeat(VoiceWorkflowBase):
    """Answers each transcribed turn with what it heard, and remembers the turns."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def run(self, transcription: str) -> AsyncIterator[str]:
        self.heard.append(transcription)
        yield f"You said: {transcription}"


def _espeak(text: str, directory: Path) -> np.ndarray:
    """24 kHz int16 speech by espeak-ng."""
    if shutil.which("espeak-ng") is None:
        unavailable("espeak-ng is not installed")
    path = directory / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    samples, rate = soundfile.read(path, dtype="float32")
    out = soxr.resample(samples, rate, 24_000)
    return (np.clip(out, -1, 1) * 32767).astype(np.int16)


def _pipeline(stack: Any, workflow: Repeat) -> VoicePipeline:
    provider = OpenAIVoiceModelProvider(base_url=stack.base_url + "/v1", api_key=API_KEY)
    return VoicePipeline(
        workflow=workflow, config=VoicePipelineConfig(model_provider=provider, tracing_disabled=True)
    )


async def _play(result: Any) -> tuple[int, list[str]]:
    """Consume the pipeline's stream: samples of reply audio, and the lifecycle events seen."""
    samples, lifecycle = 0, []
    async for event in result.stream():
        if event.type == "voice_stream_event_audio" and event.data is not None:
            samples += len(event.data)
        elif event.type == "voice_stream_event_lifecycle":
            lifecycle.append(event.event)
        elif event.type == "voice_stream_event_error":
            raise AssertionError(event.error)
    return samples, lifecycle


async def _streamed(stack: Any, audio: np.ndarray) -> tuple[Repeat, int, list[str]]:
    workflow = Repeat()
    streamed = StreamedAudioInput()
    result = await _pipeline(stack, workflow).run(streamed)

    async def microphone() -> None:
        # 40 ms chunks at real time, as a microphone gives them: semantic_vad (the SDK's default) judges
        # each pause while it lasts, so audio sent faster than it was spoken would outrun the judge
        step = 24 * 40
        for i in range(0, len(audio), step):
            await streamed.add_audio(audio[i : i + step])
            await asyncio.sleep(0.04)
        await streamed.add_audio(None)

    mic = asyncio.create_task(microphone())
    samples, lifecycle = await asyncio.wait_for(_play(result), 120)
    await mic
    return workflow, samples, lifecycle


async def _single(stack: Any, audio: np.ndarray) -> tuple[Repeat, int, list[str]]:
    workflow = Repeat()
    result = await _pipeline(stack, workflow).run(AudioInput(buffer=audio))
    samples, lifecycle = await asyncio.wait_for(_play(result), 120)
    return workflow, samples, lifecycle


def test_voice_pipeline_through_the_api(stack: Any, realtime_pool: Any, tmp_path: Path) -> None:
    """Both inputs in one event loop: the SDK keeps one HTTP client per process (`shared_http_client`),
    bound to the loop that first used it, as an application with one loop has."""
    silence = np.zeros(int(24_000 * 1.5), dtype=np.int16)
    spoken = [_espeak(s, tmp_path) for s in SENTENCES]
    audio = np.concatenate([silence, *(np.concatenate([s, silence]) for s in spoken)])

    async def main() -> Any:
        return await _streamed(stack, audio), await _single(stack, spoken[1])

    (workflow, samples, lifecycle), (single, single_samples, single_lifecycle) = asyncio.run(main())
    heard = [h.lower() for h in workflow.heard if h.strip()]
    assert len(heard) >= 2, workflow.heard
    for word, text in zip(KEYWORDS, heard, strict=False):
        assert word in text, workflow.heard
    assert lifecycle.count("turn_ended") >= 2 and lifecycle[-1] == "session_ended"
    assert samples > 24_000, "each turn's reply is spoken"
    # AudioInput: one turn over POST /v1/audio/transcriptions, the reply from /v1/audio/speech
    assert len(single.heard) == 1 and "train" in single.heard[0].lower(), single.heard
    assert single_samples > 24_000 and single_lifecycle[-1] == "session_ended"
