"""Text to speech through any server speaking OpenAI's `audio.speech` (OpenAI, speaches, VoiceChain's own
/v1/audio/speech). Audio is requested as `pcm` (24 kHz int16 little-endian) and streamed as it arrives."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipelines.providers.base import TextToSpeech
from pipelines.providers.openai_client import Endpoint, to_provider_error

#: OpenAI's `pcm` response format: 24 kHz, 16-bit, mono, little-endian.
PCM_RATE = 24_000
#: Yield at least this much audio at a time (0.25 s), so callers do not get a chunk per TCP read.
MIN_CHUNK_BYTES = PCM_RATE // 2


class OpenAITextToSpeech(TextToSpeech):
    """`voice` is the server's voice name (OpenAI: alloy, ash, coral...); `speed` 0.25 to 4."""

    name = "openai"
    sample_rate = PCM_RATE

    def __init__(self, endpoint: Endpoint, *, voice: str = "alloy", speed: float = 1.0) -> None:
        self.endpoint = endpoint
        self.voice = voice
        self.speed = speed
        self.retry = endpoint.retry_policy()
        self._client = endpoint.client()

    def _stream_impl(self, text: str) -> Iterator[np.ndarray]:
        return self.stream_at_speed(text, self.speed)

    def stream_at_speed(self, text: str, speed: float) -> Iterator[np.ndarray]:
        """int16 chunks as the server sends them. Errors before the first byte are `ProviderError`s (and
        `synthesize` retries them); a stream that breaks later raises too, but is not retried."""
        if not text.strip():
            return
        import openai

        request = self._client.audio.speech.with_streaming_response.create(
            model=self.endpoint.model, voice=self.voice, input=text, response_format="pcm", speed=speed
        )
        pending = b""
        try:
            with request as response:
                for data in response.iter_bytes():
                    pending += data
                    if len(pending) >= MIN_CHUNK_BYTES:
                        usable = len(pending) - len(pending) % 2
                        yield np.frombuffer(pending[:usable], dtype="<i2").astype(np.int16)
                        pending = pending[usable:]
        except openai.OpenAIError as exc:
            raise to_provider_error(exc, "openai speech") from exc
        usable = len(pending) - len(pending) % 2
        if usable:
            yield np.frombuffer(pending[:usable], dtype="<i2").astype(np.int16)
