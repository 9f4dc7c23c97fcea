"""Speech recognition: the stored upload in, the transcript out."""

from __future__ import annotations

from pipelines.audio.decode import decode_to_mono
from pipelines.audio.validation import AudioRejected
from pipelines.stages.context import StageContext
from pipelines.stages.result import StageError, StageResult
from pipelines.storage.database import session_scope
from pipelines.storage.turns import artifact, get_turn


def run(ctx: StageContext, turn_id: str) -> StageResult:
    with session_scope(ctx.database_url) as session:
        upload = artifact(get_turn(session, turn_id), "input_audio")
        if upload is None:
            raise StageError("the turn has no input audio")
        path = upload.path
    try:
        audio = decode_to_mono(
            ctx.store.get(path), target_rate=ctx.stt.sample_rate, max_seconds=ctx.settings.max_audio_seconds
        )
    except AudioRejected as exc:  # validated at upload, so this means the stored file was damaged
        raise StageError(f"stored audio cannot be decoded: {exc}") from exc
    transcript = ctx.stt.transcribe(audio, language=ctx.settings.stt_language)
    return StageResult(
        provider=ctx.stt.name,
        turn_fields={"transcript": transcript.text},
        output={"language": transcript.language, "audio_seconds": round(transcript.duration_s, 3)},
    )
