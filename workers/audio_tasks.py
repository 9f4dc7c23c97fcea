"""Celery tasks behind the OpenAI-compatible audio API: transcription on the `stt` queue, speech on `tts`.

They share the stage workers' models (`workers.tasks.stage_context`), so `/v1/audio/*` scales with the same
workers as the chain. Messages carry a request id; the input waits in Redis (see `workers.audio_rpc`).

Retry policy: none. A caller is waiting synchronously, so a failure is reported to it at once (as an
error frame) instead of being retried behind its back; late acks are off for the same reason, and each
message expires when the caller stops waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
import redis

from pipelines.audio.decode import decode_to_mono
from pipelines.audio.stream_encoder import StreamEncoder, UnsupportedFormat
from pipelines.audio.validation import AudioRejected
from pipelines.providers.base import ProviderError, Segment, SpeechToText, TextToSpeech, Transcript
from pipelines.settings import get_settings
from workers.audio_rpc import (
    DATA,
    FINAL,
    REPLY_TTL_S,
    SPEAK_TASK,
    TRANSCRIBE_TASK,
    error_frame,
    frame,
    input_key,
    reply_key,
)
from workers.celery_app import DEFAULT_BROKER, app
from workers.tasks import stage_context

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url or DEFAULT_BROKER)


class _Reply:
    """Pushes frames to the caller's reply list, refreshing its TTL."""

    def __init__(self, request_id: str) -> None:
        self.key = reply_key(request_id)
        self.client = _redis()

    def push(self, data: bytes) -> None:
        pipe = self.client.pipeline()
        pipe.rpush(self.key, data)
        pipe.expire(self.key, REPLY_TTL_S)
        pipe.execute()


def _take_input(request_id: str) -> bytes | None:
    value: Any = _redis().getdel(input_key(request_id))
    return value


def _fail(reply: _Reply, exc: Exception) -> None:
    if isinstance(exc, AudioRejected):
        reply.push(error_frame(exc.status, exc.code, exc.message))
    elif isinstance(exc, UnsupportedFormat):
        reply.push(error_frame(400, "unsupported_format", str(exc)))
    elif isinstance(exc, ProviderError):
        status = 503 if exc.transient else 502
        reply.push(error_frame(status, "provider_error", f"the model provider failed: {exc}"))
    else:
        log.exception("audio task failed")
        reply.push(error_frame(500, "server_error", f"the worker failed: {type(exc).__name__}"))


# --- transcription ---------------------------------------------------------------------------------


def _whisper_segments(
    stt: SpeechToText, audio: np.ndarray, options: dict[str, Any]
) -> Iterator[tuple[Segment, list[dict[str, Any]]]] | None:
    """Segments as faster-whisper produces them (with words when asked), for the local provider only.

    Streams and word timestamps need faster-whisper's generator, which `SpeechToText.transcribe` does not
    expose; other providers fall back to their complete transcript. TODO(lead): a public
    `transcribe_segments(..., word_timestamps)` on the local provider would remove this private access.
    """
    model = getattr(stt, "_model", None)
    if model is None or not hasattr(model, "transcribe"):
        return None
    segments, _info = model.transcribe(
        audio,
        language=options.get("language") or getattr(stt, "language", None),
        beam_size=getattr(stt, "beam_size", 1),
        initial_prompt=options.get("prompt"),
        vad_filter=False,
        word_timestamps=bool(options.get("words")),
    )

    def generate() -> Iterator[tuple[Segment, list[dict[str, Any]]]]:
        for s in segments:
            words = [
                {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
                for w in (s.words or ())
            ]
            yield Segment(start_s=s.start, end_s=s.end, text=s.text.strip()), words

    return generate()


def _transcribe(request_id: str, options: dict[str, Any], reply: _Reply) -> None:
    settings = get_settings()
    data = _take_input(request_id)
    if data is None:
        reply.push(error_frame(504, "input_expired", "the upload expired before a worker picked it up"))
        return
    stt = stage_context().stt
    audio = decode_to_mono(data, target_rate=stt.sample_rate, max_seconds=settings.max_audio_seconds)
    duration = len(audio) / stt.sample_rate
    stream = bool(options.get("stream"))
    segments: list[Segment] = []
    words: list[dict[str, Any]] = []
    language = options.get("language") or getattr(stt, "language", None)
    generated = _whisper_segments(stt, audio, options) if stream or options.get("words") else None
    if generated is None:
        transcript: Transcript = stt.transcribe(
            audio, language=options.get("language"), prompt=options.get("prompt")
        )
        language = transcript.language or language
        generated = (
            (segment, []) for segment in transcript.segments or (Segment(0, duration, transcript.text),)
        )
    for segment, segment_words in generated:
        if not segment.text:
            continue
        if stream:
            delta = (" " if segments else "") + segment.text
            reply.push(frame(DATA, {"type": "transcript.text.delta", "delta": delta}))
        segments.append(segment)
        words.extend(segment_words)
    text = " ".join(s.text for s in segments).strip()
    reply.push(
        frame(
            FINAL,
            {
                "text": text,
                "language": language or "en",
                "duration": round(duration, 3),
                "segments": [
                    {"start": round(s.start_s, 3), "end": round(s.end_s, 3), "text": s.text} for s in segments
                ],
                "words": words,
                "provider": stt.name,
            },
        )
    )


@app.task(name=TRANSCRIBE_TASK, queue="stt", ignore_result=True, acks_late=False, reject_on_worker_lost=False)
def transcribe_task(request_id: str, options: dict[str, Any]) -> None:
    """Transcribe the upload stored under the request id; reply with deltas (if streaming) and the text."""
    reply = _Reply(request_id)
    try:
        _transcribe(request_id, options, reply)
    except Exception as exc:
        _fail(reply, exc)


# --- speech -------------------------------------------------------------------------------------------


def _speech_chunks(tts: TextToSpeech, text: str, speed: float) -> Iterator[np.ndarray]:
    """Sentence chunks at `speed`; piper changes its length scale, other providers take `speed` themselves.

    TODO(lead): a `speed` argument on `TextToSpeech.stream` would remove the piper special case.
    """
    if speed != 1.0:
        with_speed = getattr(tts, "stream_at_speed", None)
        if with_speed is not None:
            yield from with_speed(text, speed)
            return
        voice, syn_config = getattr(tts, "_voice", None), getattr(tts, "_syn_config", None)
        if voice is not None and syn_config is not None:
            from dataclasses import replace

            base = syn_config.length_scale or getattr(voice.config, "length_scale", 1.0) or 1.0
            config = replace(syn_config, length_scale=base / speed)
            for chunk in voice.synthesize(text, syn_config=config):
                yield chunk.audio_int16_array
            return
    yield from tts.stream(text)


def _speak(request_id: str, options: dict[str, Any], reply: _Reply) -> None:
    data = _take_input(request_id)
    if data is None:
        reply.push(error_frame(504, "input_expired", "the input expired before a worker picked it up"))
        return
    text = data.decode("utf-8")
    tts = stage_context().tts
    encoder = StreamEncoder(options.get("format", "mp3"), tts.sample_rate)
    seconds = 0.0
    for chunk in _speech_chunks(tts, text, float(options.get("speed", 1.0))):
        seconds += len(chunk) / tts.sample_rate
        encoded = encoder.push(chunk)
        if encoded:
            reply.push(frame(DATA, encoded))
    tail = encoder.finish()
    if tail:
        reply.push(frame(DATA, tail))
    reply.push(frame(FINAL, {"seconds": round(seconds, 3), "provider": tts.name}))


@app.task(name=SPEAK_TASK, queue="tts", ignore_result=True, acks_late=False, reject_on_worker_lost=False)
def speak_task(request_id: str, options: dict[str, Any]) -> None:
    """Speak the text stored under the request id, pushing encoded audio sentence by sentence."""
    reply = _Reply(request_id)
    try:
        _speak(request_id, options, reply)
    except Exception as exc:
        _fail(reply, exc)
