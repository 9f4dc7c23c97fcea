"""The one settings class of VoiceChain.

Only the edges (`api`, `workers`, the CLI) build a `Settings` from the environment; code in `pipelines`
receives the values it needs as arguments, so the domain can be tested without touching `os.environ`.
Every field reads from `VOICECHAIN_<FIELD>` (for example `VOICECHAIN_REDIS_URL`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Provider = Literal["local", "openai"]

#: Stages of the chained path, in the order they run; each has a Celery queue of the same name.
STAGES: tuple[str, ...] = ("stt", "agent", "policy", "tts")


def _split_commas(value: object) -> object:
    """Accept `a,b,c` from the environment as well as a real list from code."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Everything an operator can set. Unknown `VOICECHAIN_` names are ignored by pydantic-settings,
    so typos are caught by `voicechain config` which prints the effective values."""

    model_config = SettingsConfigDict(env_prefix="VOICECHAIN_", extra="forbid", validate_default=True)

    # --- where things live -------------------------------------------------------------------------
    data_dir: Path = Field(Path(".voicechain"), description="Audio artifacts, SQLite file, generated key.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; unset means SQLite at <data_dir>/voicechain.db."
    )
    redis_url: str | None = Field(
        None, description="Broker URL; unset means `voicechain up` starts an embedded Redis on loopback."
    )

    # --- edge ----------------------------------------------------------------------------------------
    api_keys: CommaList = Field(default_factory=list, description="Accepted bearer keys, comma separated.")
    host: str = "127.0.0.1"
    port: int = 8000
    realtime_port: int = 8001
    flower_port: int = 5555
    flower_user: str = "admin"
    flower_password: str | None = Field(None, description="Unset: `voicechain up` generates one.")
    max_upload_bytes: int = Field(25 * 1024 * 1024, description="Uploads above this are refused (413).")
    max_audio_seconds: float = Field(600.0, description="Decoded audio longer than this is refused (422).")

    # --- queue ---------------------------------------------------------------------------------------
    task_soft_time_limit_s: int = Field(240, description="A stage raising past this fails that attempt.")
    task_time_limit_s: int = Field(300, description="A stage still running past this is killed.")
    visibility_timeout_s: int = Field(
        900, description="Redis redelivers an unacked message after this; keep above the time limit."
    )
    stage_max_retries: int = 3
    worker_queues: CommaList = Field(
        default_factory=lambda: list(STAGES), description="Queues a `voicechain worker` consumes."
    )
    worker_concurrency: int = Field(1, description="Processes per worker; each loads its own models.")
    sweep_interval_s: float = Field(15.0, description="How often stalled turns are looked for.")
    stall_after_s: float = Field(
        60.0, description="A queued turn with no progress for this long is re-sent by the sweeper."
    )

    # --- models --------------------------------------------------------------------------------------
    stt_provider: Provider = "local"
    stt_model: str = Field("tiny.en", description="Local: the bundled Whisper tiny.en; openai: a model name.")
    stt_compute_type: str = "int8"
    stt_beam_size: int = 1
    stt_language: str | None = "en"

    llm_provider: Provider = "local"
    llm_model: str = Field("smollm2-135m-instruct", description="Local: the bundled GGUF; openai: a name.")
    llm_threads: int = 2
    llm_context_tokens: int = 2048
    llm_max_tokens: int = 96
    llm_temperature: float = 0.2
    llm_seed: int = 7

    tts_provider: Provider = "local"
    tts_voice: str = Field("joe", description="Local: the bundled en_US-joe-medium piper voice.")

    openai_api_key: str | None = None
    openai_base_url: str | None = Field(None, description="Any OpenAI-compatible server (vLLM, Ollama...).")

    # --- agents and policy ---------------------------------------------------------------------------
    agents: str = Field(
        "pipelines.agents.examples:agents", description="`module:attribute` holding the agent definitions."
    )
    default_agent: str = "Assistant"
    policy_block_patterns: CommaList = Field(
        default_factory=list, description="Regular expressions; a reply matching one is replaced."
    )
    policy_safe_reply: str = "Sorry, I can't help with that. Is there anything else I can do for you?"

    _split = field_validator("api_keys", "policy_block_patterns", "worker_queues", mode="before")(
        _split_commas
    )

    @property
    def resolved_database_url(self) -> str:
        """SQLite inside the data directory unless a database URL is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'voicechain.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; edges call this, `pipelines` never does."""
    return Settings()
