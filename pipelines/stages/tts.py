"""Speech synthesis of the approved reply into a WAV artifact."""

from __future__ import annotations

from pipelines.audio.encode import encode
from pipelines.stages.context import StageContext
from pipelines.stages.result import ArtifactRecord, StageError, StageResult
from pipelines.storage.database import session_scope
from pipelines.storage.models import TurnStatus
from pipelines.storage.turns import get_turn


def run(ctx: StageContext, turn_id: str) -> StageResult:
    with session_scope(ctx.database_url) as session:
        turn = get_turn(session, turn_id)
        if turn.policy_verdict is None or turn.spoken_text is None:
            raise StageError("refusing to speak a reply that the policy stage has not approved")
        text = turn.spoken_text
    speech = ctx.tts.synthesize(text)
    stored = ctx.store.put(f"{turn_id}/reply.wav", encode(speech.samples, speech.sample_rate, "wav"))
    return StageResult(
        provider=ctx.tts.name,
        output={"audio_seconds": round(speech.duration_s, 3)},
        artifacts=(
            ArtifactRecord(
                kind="output_audio",
                path=stored.path,
                content_type="audio/wav",
                size_bytes=stored.size_bytes,
                sha256=stored.sha256,
                sample_rate=speech.sample_rate,
                duration_s=round(speech.duration_s, 3),
            ),
        ),
        turn_status=TurnStatus.SUCCEEDED,
    )
