"""Speech recognition: the stored upload in, the transcript out."""

from __future__ import annotations

from pipelines.agents.registry import UnknownAgent
from pipelines.agents.vocabulary import transcription_prompt
from pipelines.audio.decode import decode_to_mono
from pipelines.audio.validation import AudioRejected
from pipelines.stages.context import StageContext
from pipelines.stages.result import StageError, StageResult
from pipelines.storage.database import session_scope
from pipelines.storage.turns import artifact, get_turn


def _prompt(ctx: StageContext, agent_name: str | None) -> str | None:
    """The vocabulary of the agent the turn is addressed to, as realtime sessions prompt Whisper with
    (`pipelines.agents.vocabulary`): the words that route its tools are heard right more often."""
    if not ctx.settings.stt_agent_prompt:
        return None
    try:
        agent = ctx.agents.get(agent_name)
    except UnknownAgent:  # the agent stage reports it; the words are still worth having
        return None
    return transcription_prompt(agent)


def run(ctx: StageContext, turn_id: str) -> StageResult:
    with session_scope(ctx.database_url) as session:
        turn = get_turn(session, turn_id)
        upload = artifact(turn, "input_audio")
        if upload is None:
            raise StageError("the turn has no input audio")
        path, agent_name = upload.path, turn.agent
    try:
        audio = decode_to_mono(
            ctx.store.get(path), target_rate=ctx.stt.sample_rate, max_seconds=ctx.settings.max_audio_seconds
        )
    except AudioRejected as exc:  # validated at upload, so this means the stored file was damaged
        raise StageError(f"stored audio cannot be decoded: {exc}") from exc
    transcript = ctx.stt.transcribe(
        audio, language=ctx.settings.stt_language, prompt=_prompt(ctx, agent_name)
    )
    return StageResult(
        provider=ctx.stt.name,
        turn_fields={"transcript": transcript.text},
        output={"language": transcript.language, "audio_seconds": round(transcript.duration_s, 3)},
    )
