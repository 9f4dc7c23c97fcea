"""Transcription sessions: the realtime session's input side alone, as OpenAI serves them.

A client asks for one with `wss://.../v1/realtime?intent=transcription` (what the Agents SDK's streamed
STT opens) or with a client secret minted for `{"type": "transcription"}`; it configures it with a
`session.update` whose session is a GA `RealtimeTranscriptionSessionCreateRequest` (`audio.input`:
`format`, `transcription`, `turn_detection`, `noise_reduction`). Audio goes in as in any session; each
turn the VAD ends (or each `input_audio_buffer.commit`) becomes a user item whose words come back as
`conversation.item.input_audio_transcription.delta` then `.completed`. No response is ever created:
`response.create` is refused with an error, and no reply is speculated or prefilled.

The session type is fixed when the session opens, as on OpenAI: a `session.update` of the other type is
an error, and the session carries on. Whisper is not a streaming model, so a turn's transcript arrives
as one delta followed by the completed event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from pipelines.realtime.config import SessionConfig, _audio_changes, _format_dict
from pipelines.realtime.protocol import ProtocolError, event
from pipelines.realtime.session import RealtimeSession

TRANSCRIPTION = "transcription"
COMPLETED = "conversation.item.input_audio_transcription.completed"
#: Items a transcription session keeps for `conversation.item.retrieve`; older ones are forgotten, so a
#: day-long dictation does not grow without bound (everything is in the conversation store anyway).
KEEP_ITEMS = 64


def transcription_config(update: BaseModel | None = None) -> SessionConfig:
    """A transcription session's starting configuration, with `update` (a validated session) applied."""
    config = SessionConfig(model="whisper-tiny.en", output_modalities=("text",))
    return apply_transcription_update(config, update) if update is not None else config


def preset_config(preset: Mapping[str, Any] | None) -> SessionConfig:
    """The configuration a client secret's `{"type": "transcription", ...}` preset asks for; the defaults
    for any other preset (a realtime preset on `?intent=transcription` says nothing about transcription)."""
    if not preset or preset.get("type") != TRANSCRIPTION:
        return transcription_config()
    from openai.types.realtime import RealtimeTranscriptionSessionCreateRequest

    request = RealtimeTranscriptionSessionCreateRequest.model_validate(
        {k: v for k, v in preset.items() if k != "conversation_id"}
    )
    return transcription_config(request)


def apply_transcription_update(config: SessionConfig, session: BaseModel) -> SessionConfig:
    """Merge a validated transcription `session.update` into `config`; unsent fields keep their values."""
    if getattr(session, "type", None) != TRANSCRIPTION:
        raise ProtocolError(
            "This is a transcription session; session.type must be 'transcription'.",
            code="invalid_value",
            param="session.type",
        )
    from dataclasses import replace

    audio = getattr(session, "audio", None)
    changes = _audio_changes(config, audio) if audio is not None and audio.input is not None else {}
    if changes.get("transcription", config.transcription) is None:
        changes["transcription"] = {"model": "whisper-tiny.en"}  # transcripts are the whole point
    return replace(config, **changes)


def describe(config: SessionConfig, session_id: str) -> dict[str, Any]:
    """The `session` of `session.created` / `.updated`: a GA `RealtimeTranscriptionSessionCreateRequest`."""
    td = config.turn_detection
    return {
        "type": TRANSCRIPTION,
        "object": "realtime.transcription_session",
        "id": session_id,
        "audio": {
            "input": {
                "format": _format_dict(config.input_format),
                "transcription": config.transcription,
                "noise_reduction": config.noise_reduction,
                "turn_detection": _turn_detection_dict(td.to_dict()) if td is not None else None,
            }
        },
        "include": None,
    }


def _turn_detection_dict(td: dict[str, Any]) -> dict[str, Any]:
    """Transcription sessions never respond, so their turn detection says so."""
    return {**td, "create_response": False, "interrupt_response": False}


class TranscriptionSession(RealtimeSession):
    """A `RealtimeSession` that transcribes turns and never responds (see the module docstring)."""

    async def start(self, *, owner: str = "realtime", agent: str = "Transcription") -> None:
        self.conversation_id = await asyncio.to_thread(self.sink.open, self.id, owner=owner, agent=agent)
        await self._send(event("session.created", session=describe(self.config, self.id)))

    async def _send(self, data: dict[str, Any]) -> None:
        if data.get("type") == COMPLETED:  # one delta, the whole turn: Whisper does not stream
            delta = event(
                "conversation.item.input_audio_transcription.delta",
                item_id=data["item_id"],
                content_index=data.get("content_index", 0),
                delta=data.get("transcript") or "",
            )
            await super()._send(delta)
        await super()._send(data)

    async def _on_session_update(self, ev: BaseModel) -> None:
        try:
            new = apply_transcription_update(self.config, ev.session)  # type: ignore[attr-defined]
        except ProtocolError as err:
            err.event_id = ev.event_id  # type: ignore[attr-defined]
            raise
        await self._reconfigure(new)
        await self._send(event("session.updated", session=describe(self.config, self.id)))

    async def _on_response_create(self, ev: BaseModel) -> None:
        raise ProtocolError(
            "Transcription sessions do not create responses.",
            code="invalid_request_error",
            event_id=ev.event_id,  # type: ignore[attr-defined]
        )

    async def _commit(self, audio: Any, item_id: str, *, respond: bool, **kw: Any) -> None:
        await super()._commit(audio, item_id, respond=False, **kw)
        while len(self.conversation) > KEEP_ITEMS:
            first = next(iter(self.conversation))["id"]
            self.conversation.delete(first)

    def _start_response(self, **kw: Any) -> None:
        """Never: a transcription session has no model to answer with."""

    def _prefill(self) -> None:
        """No model reads the conversation."""
