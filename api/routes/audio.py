"""The OpenAI audio API, served by VoiceChain's own stt and tts workers.

`POST /v1/audio/transcriptions` and `POST /v1/audio/speech` take the requests of OpenAI's API, so the
official clients work when pointed at us (`base_url=".../v1"`). Each request becomes a Celery task on the
`stt` or `tts` queue (the same workers as the chain) and the route waits for its reply in Redis (see
`workers.audio_rpc`). The `model` field is accepted and recorded, but the worker's configured provider
answers; the `voice` field likewise selects nothing while one local voice is installed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import redis.asyncio as aioredis
from fastapi import APIRouter, Body, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from api.deps import PrincipalDep, SettingsDep
from api.errors import ApiError, error_body
from api.uploads import read_audio_upload
from pipelines.audio.stream_encoder import CONTENT_TYPES, UnsupportedFormat, check_format
from pipelines.audio.validation import inspect_audio
from pipelines.settings import Settings
from workers.audio_rpc import (
    DATA,
    ERROR,
    FINAL,
    INPUT_TTL_S,
    SPEAK_TASK,
    TRANSCRIBE_TASK,
    input_key,
    reply_key,
)
from workers.celery_app import DEFAULT_BROKER
from workers.celery_app import app as celery_app

router = APIRouter(prefix="/v1/audio", tags=["audio"])

TRANSCRIPTION_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
MAX_SPEECH_CHARS = 4096
ACCEPTED_PART_TYPES = ("audio/", "video/", "application/ogg", "application/octet-stream")


class ParamError(ApiError):
    """An `ApiError` naming the offending parameter, as OpenAI's error bodies do (`error.param`)."""

    def __init__(self, status: int, message: str, *, code: str, param: str | None) -> None:
        super().__init__(status, message, code=code)
        self.param = param


def install(app: FastAPI) -> None:
    """Register the handler that adds `param` to the error body (api.errors covers the rest)."""

    @app.exception_handler(ParamError)
    async def _param_error(_: Request, exc: ParamError) -> JSONResponse:
        body = error_body(exc.message, code=exc.code, param=exc.param)
        return JSONResponse(body, exc.status, headers=exc.headers)


def _bad_request(message: str, param: str, code: str = "invalid_value") -> ParamError:
    return ParamError(400, message, code=code, param=param)


def _redis(request: Request) -> aioredis.Redis:
    """One async client per app, made on first use (the event loop exists by then)."""
    client = getattr(request.app.state, "audio_redis", None)
    if client is None:
        settings: Settings = request.app.state.settings
        # BLPOP blocks for up to `audio_api_timeout_s`: the socket must wait longer than that (redis-py's
        # default read timeout of 5 s would turn every slow worker into a 500).
        client = request.app.state.audio_redis = aioredis.Redis.from_url(
            settings.redis_url or DEFAULT_BROKER,
            socket_timeout=settings.audio_api_timeout_s + 10,
            socket_connect_timeout=5,
        )
    return client


class _Call:
    """One request to a worker: store the input, send the task, read the reply frames."""

    def __init__(self, request: Request, settings: Settings) -> None:
        self.redis = _redis(request)
        self.timeout_s = settings.audio_api_timeout_s
        self.id = uuid.uuid4().hex

    async def send(self, task: str, queue: str, payload: bytes, options: dict[str, Any]) -> None:
        await self.redis.set(input_key(self.id), payload, ex=INPUT_TTL_S)
        await run_in_threadpool(
            celery_app.send_task,
            task,
            args=(self.id, options),
            queue=queue,
            routing_key=queue,
            expires=self.timeout_s,
        )

    async def next_frame(self) -> tuple[bytes, bytes]:
        """The next (kind, payload); 504 when no worker answers in time."""
        item = await self.redis.blpop([reply_key(self.id)], timeout=self.timeout_s)
        if item is None:
            await self.redis.delete(input_key(self.id))
            raise ApiError(
                504, f"no {self.what} worker answered within {self.timeout_s:g} s", code="worker_timeout"
            )
        data: bytes = item[1]
        return data[:1], data[1:]

    what = "worker"


def _raise_error(payload: bytes) -> None:
    error = json.loads(payload)
    raise ApiError(int(error["status"]), error["message"], code=error["code"])


# --- transcriptions ------------------------------------------------------------------------------------

TRANSCRIPTION_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "model"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "WAV, FLAC, OGG, MP3"},
                        "model": {"type": "string"},
                        "language": {"type": "string"},
                        "prompt": {"type": "string"},
                        "response_format": {"type": "string", "enum": list(TRANSCRIPTION_FORMATS)},
                        "temperature": {"type": "number"},
                        "timestamp_granularities[]": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["word", "segment"]},
                        },
                        "stream": {"type": "boolean"},
                    },
                }
            }
        },
    }
}


async def _read_form(request: Request, settings: Settings) -> tuple[bytes, dict[str, Any]]:
    missing = ParamError(400, "missing the 'file' part with the audio", code="missing_file", param="file")
    upload = await read_audio_upload(
        request, settings, accepted_part_types=ACCEPTED_PART_TYPES, max_fields=32, missing_file=missing
    )
    fields: dict[str, Any] = {k: v for k, v in upload.form.items() if isinstance(v, str)}
    fields["timestamp_granularities"] = [
        v for k in ("timestamp_granularities[]", "timestamp_granularities") for v in upload.form.getlist(k)
    ]
    fields["filename"] = upload.filename
    return upload.data, fields


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _subtitles(result: dict[str, Any], fmt: str) -> str:
    separator = "," if fmt == "srt" else "."
    blocks = [] if fmt == "srt" else ["WEBVTT"]
    for number, segment in enumerate(result["segments"], start=1):
        times = f"{_timestamp(segment['start'], separator)} --> {_timestamp(segment['end'], separator)}"
        blocks.append(
            f"{number}\n{times}\n{segment['text']}" if fmt == "srt" else f"{times}\n{segment['text']}"
        )
    return "\n\n".join(blocks) + "\n"


def _transcription_body(result: dict[str, Any], fmt: str, granularities: list[str]) -> Response:
    usage = {"type": "duration", "seconds": max(1, round(result["duration"]))}
    if fmt == "json":
        return JSONResponse({"text": result["text"], "usage": usage})
    if fmt == "text":
        return PlainTextResponse(result["text"] + "\n")
    if fmt in ("srt", "vtt"):
        media = "application/x-subrip" if fmt == "srt" else "text/vtt"
        return PlainTextResponse(_subtitles(result, fmt), media_type=media)
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": result["language"],
        "duration": result["duration"],
        "text": result["text"],
        "usage": usage,
    }
    if not granularities or "segment" in granularities:
        body["segments"] = [
            {
                "id": number,
                "seek": 0,
                "start": s["start"],
                "end": s["end"],
                "text": s["text"],
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
            for number, s in enumerate(result["segments"])
        ]
    if "word" in granularities:
        body["words"] = result["words"]
    return JSONResponse(body)


@router.post("/transcriptions", openapi_extra=TRANSCRIPTION_SCHEMA, response_model=None)
async def create_transcription(request: Request, settings: SettingsDep, _: PrincipalDep) -> Response:
    """Transcribe an uploaded file, as OpenAI's `audio.transcriptions.create` does (also `stream=true`)."""
    data, fields = await _read_form(request, settings)
    if not fields.get("model"):
        raise _bad_request("'model' is required", "model", code="missing_required_parameter")
    fmt = fields.get("response_format") or "json"
    if fmt not in TRANSCRIPTION_FORMATS:
        raise _bad_request(
            f"response_format {fmt!r} is not one of {', '.join(TRANSCRIPTION_FORMATS)}", "response_format"
        )
    granularities: list[str] = fields["timestamp_granularities"]
    if any(g not in ("word", "segment") for g in granularities):
        raise _bad_request(
            "timestamp_granularities[] takes 'word' and/or 'segment'", "timestamp_granularities"
        )
    if granularities and fmt != "verbose_json":
        raise _bad_request(
            "timestamp_granularities[] needs response_format=verbose_json", "timestamp_granularities"
        )
    stream = _truthy(fields.get("stream"))
    await run_in_threadpool(
        inspect_audio, data, max_bytes=settings.max_upload_bytes, max_seconds=settings.max_audio_seconds
    )
    call = _Call(request, settings)
    call.what = "stt"
    options = {
        "language": fields.get("language") or None,
        "prompt": fields.get("prompt") or None,
        "stream": stream,
        "words": "word" in granularities,
        "model": fields["model"],
    }
    await call.send(TRANSCRIBE_TASK, "stt", data, options)
    if stream:
        return await _stream_transcription(call)
    while True:
        kind, payload = await call.next_frame()
        if kind == ERROR:
            _raise_error(payload)
        if kind == FINAL:
            return _transcription_body(json.loads(payload), fmt, granularities)


async def _stream_transcription(call: _Call) -> Response:
    """SSE of `transcript.text.delta` events and one `transcript.text.done`; errors before the first
    event are ordinary HTTP errors, later ones an `error` event (the status line is already sent)."""
    first = await call.next_frame()
    if first[0] == ERROR:
        _raise_error(first[1])

    async def events() -> AsyncIterator[bytes]:
        kind, payload = first
        while True:
            if kind == DATA:
                yield b"data: " + payload + b"\n\n"
            elif kind == FINAL:
                result = json.loads(payload)
                done = {"type": "transcript.text.done", "text": result["text"]}
                done["usage"] = {"type": "duration", "seconds": max(1, round(result["duration"]))}
                yield b"data: " + json.dumps(done).encode() + b"\n\n"
                return
            else:
                yield (
                    b"data: " + json.dumps({"type": "error", "error": json.loads(payload)}).encode() + b"\n\n"
                )
                return
            try:
                kind, payload = await call.next_frame()
            except ApiError as exc:
                error = {"type": "error", "error": {"code": exc.code, "message": exc.message}}
                yield b"data: " + json.dumps(error).encode() + b"\n\n"
                return

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# --- speech -----------------------------------------------------------------------------------------


class SpeechRequest(BaseModel):
    """OpenAI's `audio.speech.create` body."""

    model: str = Field(min_length=1)
    input: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    voice: str | dict[str, Any]
    response_format: str = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] = "audio"


def _parse_speech(body: Any) -> SpeechRequest:
    """400 with the parameter named, as OpenAI answers, instead of FastAPI's 422 list."""
    try:
        speech = SpeechRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(p) for p in error.get("loc", ())) or None
        raise ParamError(400, f"{param}: {error.get('msg')}", code="invalid_value", param=param) from exc
    if not speech.input.strip():
        raise _bad_request("'input' is empty", "input")
    try:
        speech.response_format = check_format(speech.response_format)
    except UnsupportedFormat as exc:
        raise _bad_request(str(exc), "response_format", code="unsupported_format") from exc
    return speech


@router.post("/speech", response_class=Response, responses={200: {"content": {"audio/mpeg": {}}}})
async def create_speech(
    request: Request, settings: SettingsDep, _: PrincipalDep, body: Annotated[Any, Body()] = None
) -> Response:
    """Speak `input` as wav, pcm (24 kHz int16), flac, mp3, opus or aac, streamed sentence by sentence."""
    speech = _parse_speech(body)
    call = _Call(request, settings)
    call.what = "tts"
    options = {"format": speech.response_format, "speed": speech.speed, "model": speech.model}
    await call.send(SPEAK_TASK, "tts", speech.input.encode("utf-8"), options)
    kind, payload = await call.next_frame()
    if kind == ERROR:
        _raise_error(payload)
    media_type = CONTENT_TYPES[speech.response_format]
    if speech.stream_format == "sse":
        return StreamingResponse(_speech_events(call, kind, payload), media_type="text/event-stream")
    return StreamingResponse(_speech_bytes(call, kind, payload), media_type=media_type)


async def _speech_bytes(call: _Call, kind: bytes, payload: bytes) -> AsyncIterator[bytes]:
    while kind == DATA:
        yield payload
        kind, payload = await call.next_frame()
    # FINAL ends the body; an ERROR after audio was sent can only cut the body short.


async def _speech_events(call: _Call, kind: bytes, payload: bytes) -> AsyncIterator[bytes]:
    import base64

    while kind == DATA:
        delta = {"type": "speech.audio.delta", "audio": base64.b64encode(payload).decode()}
        yield b"data: " + json.dumps(delta).encode() + b"\n\n"
        kind, payload = await call.next_frame()
    if kind == FINAL:
        done = {
            "type": "speech.audio.done",
            "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
        }
        yield b"data: " + json.dumps(done).encode() + b"\n\n"
