"""Speech to text through any server speaking OpenAI's `audio.transcriptions` (OpenAI, speaches,
VoiceChain's own /v1/audio/transcriptions)."""

from __future__ import annotations

import numpy as np
from openai import omit

from pipelines.audio.encode import encode
from pipelines.providers.base import Segment, SpeechToText, Transcript
from pipelines.providers.openai_client import Endpoint, guarded


class OpenAISpeechToText(SpeechToText):
    """Sends 16 kHz mono WAV; asks for `verbose_json` so segments and the language come back too."""

    name = "openai"
    sample_rate = 16_000

    def __init__(self, endpoint: Endpoint, *, language: str | None = None) -> None:
        self.endpoint = endpoint
        self.language = language
        self.retry = endpoint.retry_policy()
        self._client = endpoint.client()

    def _transcribe_impl(self, audio: np.ndarray, *, language: str | None, prompt: str | None) -> Transcript:
        samples = np.asarray(audio, dtype=np.float32)
        duration = len(samples) / self.sample_rate
        if samples.size == 0:
            return Transcript(text="", language=language or self.language, duration_s=0.0)
        wav = encode(samples, self.sample_rate, "wav")
        language = language or self.language
        result = guarded(
            "openai transcription",
            lambda: self._client.audio.transcriptions.create(
                model=self.endpoint.model,
                file=("audio.wav", wav, "audio/wav"),
                response_format="verbose_json",
                language=language or omit,
                prompt=prompt or omit,
            ),
        )
        segments = tuple(
            Segment(start_s=float(s.start), end_s=float(s.end), text=s.text.strip())
            for s in (result.segments or ())
        )
        return Transcript(
            text=result.text.strip(),
            language=getattr(result, "language", None) or language,
            duration_s=float(getattr(result, "duration", None) or duration),
            segments=segments,
        )
