"""The session configuration: OpenAI's defaults, merged with `session.update`, rendered for `session.*`.

Only what the local chain can honour is kept; other fields of a `session.update` are accepted and
ignored (clients such as the Agents SDK always send some), so an update never fails on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel

from pipelines.realtime.protocol import ProtocolError

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]

#: semantic_vad's longest wait per eagerness (OpenAI's caps are 8 s / 4 s / 2 s): an end-of-turn model
#: judges each pause and ends a finished turn much sooner (`semantic.EAGERNESS`, the same numbers).
EAGERNESS_SILENCE_MS = {"low": 3000, "medium": 2000, "auto": 2000, "high": 1200}

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant. Answer in one or two short spoken sentences, without lists or markup."
)


@dataclass(frozen=True)
class TurnDetection:
    """server_vad parameters, with OpenAI's defaults."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = None
    eagerness: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.type == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.eagerness or "auto",
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response,
            }
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
            "idle_timeout_ms": self.idle_timeout_ms,
        }


@dataclass(frozen=True)
class SessionConfig:
    """What a session runs with; immutable so a running response keeps the config it started with."""

    model: str = "voicechain-local"
    instructions: str = DEFAULT_INSTRUCTIONS
    input_format: AudioFormat = "audio/pcm"
    output_format: AudioFormat = "audio/pcm"
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    transcription: dict[str, Any] | None = field(default_factory=lambda: {"model": "whisper-tiny.en"})
    #: Echoed as set (`near_field` / `far_field`); no filter runs here: the VAD copes with room noise.
    noise_reduction: dict[str, Any] | None = None
    output_modalities: tuple[str, ...] = ("audio",)
    voice: str = "joe"
    speed: float = 1.0
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] = "auto"
    max_output_tokens: int | Literal["inf"] = "inf"

    def to_dict(self, session_id: str) -> dict[str, Any]:
        """The `session` of `session.created` / `session.updated`: a GA `RealtimeSessionCreateRequest`."""
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": self.model,
            "output_modalities": list(self.output_modalities),
            "instructions": self.instructions,
            "audio": {
                "input": {
                    "format": _format_dict(self.input_format),
                    "transcription": self.transcription,
                    "noise_reduction": self.noise_reduction,
                    "turn_detection": self.turn_detection.to_dict() if self.turn_detection else None,
                },
                "output": {
                    "format": _format_dict(self.output_format),
                    "voice": self.voice,
                    "speed": self.speed,
                },
            },
            "tools": [dict(t) for t in self.tools],
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "tracing": None,
            "truncation": "auto",
        }

    @property
    def audio_out(self) -> bool:
        return "audio" in self.output_modalities


def _format_dict(fmt: AudioFormat) -> dict[str, Any]:
    return {"type": fmt, "rate": 24000} if fmt == "audio/pcm" else {"type": fmt}


def _set(model: BaseModel | None, name: str) -> bool:
    return model is not None and name in model.model_fields_set


def apply_update(config: SessionConfig, session: BaseModel) -> SessionConfig:
    """Merge a validated `session.update` session into `config`; fields not sent keep their values."""
    if getattr(session, "type", None) != "realtime":
        raise ProtocolError("Only `realtime` sessions are supported.", param="session.type")
    changes: dict[str, Any] = {}
    for name in ("instructions", "voice", "max_output_tokens", "model"):
        if _set(session, name) and getattr(session, name) is not None:
            changes[name] = getattr(session, name)
    if _set(session, "output_modalities") and session.output_modalities:  # type: ignore[attr-defined]
        modalities = tuple(session.output_modalities)  # type: ignore[attr-defined]
        if len(modalities) != 1:
            raise ProtocolError("output_modalities must be ['audio'] or ['text'].", param="output_modalities")
        changes["output_modalities"] = modalities
    if _set(session, "tools"):
        changes["tools"] = tuple(_function_tools(session.tools or []))  # type: ignore[attr-defined]
    if _set(session, "tool_choice") and session.tool_choice is not None:  # type: ignore[attr-defined]
        choice = session.tool_choice  # type: ignore[attr-defined]
        changes["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump(exclude_none=True)
    audio = getattr(session, "audio", None)
    if audio is not None:
        changes.update(_audio_changes(config, audio))
    return replace(config, **changes)


def _function_tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        if getattr(tool, "type", "function") != "function" or not getattr(tool, "name", None):
            raise ProtocolError("Only named function tools are supported.", param="session.tools")
        out.append(
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.parameters or {"type": "object", "properties": {}},
            }
        )
    return out


def _audio_changes(config: SessionConfig, audio: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    inp, out = audio.input, getattr(audio, "output", None)  # a transcription session has no output
    if inp is not None:
        if inp.format is not None and inp.format.type:
            changes["input_format"] = inp.format.type
        if _set(inp, "transcription"):
            changes["transcription"] = (
                inp.transcription.model_dump(exclude_none=True) if inp.transcription is not None else None
            )
        if _set(inp, "turn_detection"):
            changes["turn_detection"] = _turn_detection(inp.turn_detection)
        if _set(inp, "noise_reduction"):
            nr = inp.noise_reduction
            changes["noise_reduction"] = nr.model_dump(exclude_none=True) if nr is not None else None
    if out is not None:
        if out.format is not None and out.format.type:
            changes["output_format"] = out.format.type
        if out.voice is not None:
            changes["voice"] = out.voice if isinstance(out.voice, str) else out.voice.id
        if out.speed is not None:
            changes["speed"] = out.speed
    return changes


def _turn_detection(td: Any) -> TurnDetection | None:
    if td is None:
        return None
    base = TurnDetection()
    # getattr: a transcription session's turn detection may lack the response fields
    create, interrupt = getattr(td, "create_response", None), getattr(td, "interrupt_response", None)
    create = create if create is not None else base.create_response
    interrupt = interrupt if interrupt is not None else base.interrupt_response
    if td.type == "semantic_vad":
        eagerness = getattr(td, "eagerness", None) or "auto"
        return replace(
            base,
            type="semantic_vad",
            eagerness=eagerness,
            silence_duration_ms=EAGERNESS_SILENCE_MS[eagerness],
            create_response=create,
            interrupt_response=interrupt,
        )
    threshold = td.threshold if td.threshold is not None else base.threshold
    if not 0.0 < threshold < 1.0:
        raise ProtocolError("threshold must be between 0 and 1.", param="session.audio.input.turn_detection")
    return TurnDetection(
        threshold=threshold,
        prefix_padding_ms=td.prefix_padding_ms
        if td.prefix_padding_ms is not None
        else base.prefix_padding_ms,
        silence_duration_ms=(
            td.silence_duration_ms if td.silence_duration_ms is not None else base.silence_duration_ms
        ),
        create_response=create,
        interrupt_response=interrupt,
        idle_timeout_ms=getattr(td, "idle_timeout_ms", None),
    )


def with_response_overrides(config: SessionConfig, overrides: Any) -> SessionConfig:
    """`response.create` may override instructions, modalities, tools and tool choice for one response."""
    if overrides is None:
        return config
    changes: dict[str, Any] = {}
    if overrides.instructions is not None:
        changes["instructions"] = overrides.instructions
    if overrides.output_modalities:
        changes["output_modalities"] = tuple(overrides.output_modalities)
    if overrides.max_output_tokens is not None:
        changes["max_output_tokens"] = overrides.max_output_tokens
    if overrides.tool_choice is not None:
        choice = overrides.tool_choice
        changes["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump(exclude_none=True)
    if overrides.tools is not None:
        changes["tools"] = tuple(
            {
                "type": "function",
                "name": t.name,
                "description": t.description or "",
                "parameters": t.parameters or {},
            }
            for t in overrides.tools
            if getattr(t, "name", None)
        )
    return replace(config, **changes)
