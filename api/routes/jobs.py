"""Jobs: one spoken turn through the chain `stt -> agent -> policy -> tts`."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import AgentsDep, PrincipalDep, SessionDep, SettingsDep, StoreDep
from api.errors import ApiError
from api.schemas import JobDocument
from api.uploads import read_audio_upload
from pipelines.agents.registry import UnknownAgent
from pipelines.audio.encode import CONTENT_TYPES, encode
from pipelines.audio.validation import AudioInfo, inspect_audio
from pipelines.settings import Settings
from pipelines.storage.artifacts import ArtifactStore
from pipelines.storage.turns import (
    add_artifact,
    add_turn,
    artifact,
    find_by_idempotency_key,
    get_turn,
    open_conversation,
)
from workers.dispatch import publish

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

ACCEPTED_PART_TYPES = ("audio/", "video/ogg", "application/ogg", "application/octet-stream")

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "WAV, FLAC, OGG or MP3",
                        },
                        "conversation_id": {"type": "string"},
                        "agent": {"type": "string"},
                        "callback_url": {
                            "type": "string",
                            "description": "Gets a signed POST when the job needs approval and when it ends",
                        },
                    },
                }
            }
        },
    }
}


def _callback_url(value: object, settings: Settings) -> str | None:
    """An http(s) URL, accepted only when webhooks can be signed."""
    if not isinstance(value, str) or not value:
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise ApiError(422, "callback_url must be an http(s) URL (max 2048 chars)", code="bad_callback")
    if not settings.webhook_secret:
        raise ApiError(422, "webhooks are not configured here (no secret)", code="webhooks_disabled")
    return value


async def _read_upload(
    request: Request, settings: Settings
) -> tuple[bytes, str, str | None, str | None, str | None]:
    """The upload and its fields: (bytes, filename, conversation_id, agent, callback_url)."""
    upload = await read_audio_upload(
        request, settings, accepted_part_types=ACCEPTED_PART_TYPES, max_fields=8,
        missing_file=ApiError(422, "missing the 'file' part with the audio", code="missing_file"),
    )  # fmt: skip
    return (
        upload.data,
        upload.filename,
        upload.text("conversation_id"),
        upload.text("agent"),
        _callback_url(upload.form.get("callback_url"), settings),
    )


def _persist(
    session: Session,
    store: ArtifactStore,
    *,
    owner: str,
    agent: str,
    conversation_id: str | None,
    idempotency_key: str | None,
    data: bytes,
    filename: str,
    info: AudioInfo,
    callback_url: str | None = None,
) -> str:
    """Store the audio and commit the job row before anything is enqueued (the row is the outbox)."""
    conversation = open_conversation(session, owner=owner, agent=agent, conversation_id=conversation_id)
    turn = add_turn(
        session,
        conversation=conversation,
        owner=owner,
        agent=agent if conversation_id is None else None,
        idempotency_key=idempotency_key,
    )
    turn.callback_url = callback_url
    suffix = PurePath(filename).suffix.lower()[:8] or "." + info.format.lower()
    stored = store.put(f"{turn.id}/input{suffix}", data)
    add_artifact(
        session,
        turn,
        kind="input_audio",
        path=stored.path,
        content_type=f"audio/{info.format.lower()}",
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        sample_rate=info.sample_rate,
        duration_s=round(info.duration_s, 3),
    )
    session.commit()
    return turn.id


@router.post("", status_code=202, response_model=JobDocument, openapi_extra=UPLOAD_SCHEMA)
async def create_job(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    store: StoreDep,
    principal: PrincipalDep,
    agents: AgentsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    """Accept one spoken turn; it is stored durably before it is queued. Poll the job or its audio."""
    if idempotency_key and (existing := find_by_idempotency_key(session, principal.owner, idempotency_key)):
        return _document(existing.id, session, replayed=True)
    data, filename, conversation_id, agent_name, callback_url = await _read_upload(request, settings)
    info = await run_in_threadpool(
        inspect_audio, data, max_bytes=settings.max_upload_bytes, max_seconds=settings.max_audio_seconds
    )
    try:
        agent = agents.get(agent_name).name
    except UnknownAgent as exc:
        raise ApiError(422, str(exc), code="unknown_agent") from exc
    try:
        turn_id = await run_in_threadpool(
            _persist,
            session,
            store,
            owner=principal.owner,
            agent=agent,
            conversation_id=conversation_id,
            idempotency_key=idempotency_key,
            data=data,
            filename=filename,
            info=info,
            callback_url=callback_url,
        )
    except IntegrityError:  # a concurrent request with the same Idempotency-Key won the race
        session.rollback()
        if idempotency_key and (
            existing := find_by_idempotency_key(session, principal.owner, idempotency_key)
        ):
            return _document(existing.id, session, replayed=True)
        raise
    await run_in_threadpool(publish, settings.resolved_database_url, turn_id)
    return _document(turn_id, session)


def _document(turn_id: str, session: Session, *, replayed: bool = False) -> JSONResponse:
    session.expire_all()
    document = JobDocument.of(get_turn(session, turn_id))
    headers = {"Location": f"/v1/jobs/{turn_id}"} | ({"Idempotent-Replayed": "true"} if replayed else {})
    return JSONResponse(document.model_dump(mode="json"), status_code=202, headers=headers)


@router.get("/{job_id}", response_model=JobDocument)
def read_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobDocument:
    """The job: status, transcript, reply, policy verdict and a timeline of its stages."""
    return JobDocument.of(get_turn(session, job_id, owner=principal.owner))


@router.get("/{job_id}/audio", response_class=Response, responses={200: {"content": {"audio/wav": {}}}})
def read_job_audio(
    job_id: str,
    session: SessionDep,
    store: StoreDep,
    principal: PrincipalDep,
    format: Annotated[Literal["wav", "flac", "ogg"], Query()] = "wav",
) -> Response:
    """The spoken answer; 404 until the tts stage has finished."""
    turn = get_turn(session, job_id, owner=principal.owner)
    output = artifact(turn, "output_audio")
    if output is None:
        raise ApiError(
            404, f"job {job_id} has no spoken answer yet (status {turn.status})", code="audio_not_ready"
        )
    if format == "wav":
        return FileResponse(store.root / output.path, media_type="audio/wav", filename=f"{job_id}.wav")
    import soundfile

    samples, rate = soundfile.read(store.root / output.path, dtype="int16")
    return Response(encode(samples, rate, format), media_type=CONTENT_TYPES[format])
