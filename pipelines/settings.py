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
#: The queue of webhook deliveries: slow receivers must not hold up a stage worker.
WEBHOOK_QUEUE = "webhooks"
#: Every queue a worker can consume: the four stages and webhook delivery.
QUEUES: tuple[str, ...] = (*STAGES, WEBHOOK_QUEUE)


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
        None, description="Redis URL; unset means `voicechain up` starts an embedded Redis on loopback."
    )
    broker_url: str | None = Field(
        None,
        description="Message broker, e.g. amqp://user:pass@host:5672// for RabbitMQ; unset: `redis_url`. "
        "Redis is still needed for liveness keys, locks and the realtime registry.",
    )

    # --- edge ----------------------------------------------------------------------------------------
    api_keys: CommaList = Field(default_factory=list, description="Accepted bearer keys, comma separated.")
    host: str = "127.0.0.1"
    port: int = 8000
    realtime_port: int = 8001
    realtime_advertise_host: str | None = Field(
        None,
        description="Address the API (gateway, calls) reaches this pool process at, as published in the "
        "Redis registry; also the WebRTC candidates' address unless `webrtc_advertise_address` is set. "
        "Unset: `host`, or, when `host` is 0.0.0.0 / ::, this machine's routable address (its hostname's, "
        "else the default route's).",
    )
    flower_port: int = 5555
    flower_user: str = "admin"
    flower_password: str | None = Field(None, description="Unset: `voicechain up` generates one.")
    key_rate_limit_per_minute: int = Field(
        600, description="Requests a minute per database API key without its own limit; 0: unlimited."
    )
    bootstrap_rate_limit_per_minute: int = Field(
        0, description="Requests a minute per `api_keys` / generated key; 0: unlimited."
    )
    realtime_sessions_per_key: int = Field(
        8, description="Realtime sessions one key may hold open at once (database keys); 0: unlimited."
    )
    max_upload_bytes: int = Field(25 * 1024 * 1024, description="Uploads above this are refused (413).")
    max_audio_seconds: float = Field(600.0, description="Decoded audio longer than this is refused (422).")

    # --- queue ---------------------------------------------------------------------------------------
    task_soft_time_limit_s: int = Field(240, description="A stage raising past this fails that attempt.")
    task_time_limit_s: int = Field(300, description="A stage still running past this is killed.")
    visibility_timeout_s: int = Field(
        900, description="Redis redelivers an unacked message after this; keep above the time limit."
    )
    stage_max_retries: int = 3
    stage_max_crashes: int = Field(
        5,
        description="A stage begun this many times whose worker died under it each time (a segfault, "
        "the OOM killer) fails the turn instead of being sent again, so one poison turn cannot "
        "crash-loop every worker.",
    )
    worker_queues: CommaList = Field(
        default_factory=lambda: list(QUEUES), description="Queues a `voicechain worker` consumes."
    )
    worker_concurrency: int = Field(1, description="Processes per worker; each loads its own models.")
    worker_stuck_after_s: float = Field(
        120.0, description="An idle worker whose queues hold messages this long exits for a restart; 0: off."
    )
    sweep_interval_s: float = Field(2.0, description="How often stalled turns are looked for.")
    worker_liveness_ttl_s: float = Field(
        6.0,
        gt=0,
        description="A worker refreshes a key naming the stage it runs every third of this; the sweeper "
        "re-sends a running stage whose key expired (its worker died).",
    )
    stall_after_s: float = Field(
        15.0,
        description="A turn with no progress for this long, whose stage queue is empty, is re-sent by the "
        "sweeper (its message was lost, or held by a worker that died before starting it).",
    )

    # --- models --------------------------------------------------------------------------------------
    stt_provider: Provider = "local"
    stt_model: str = Field("tiny.en", description="Local: the bundled Whisper tiny.en; openai: a model name.")
    stt_compute_type: str = "int8"
    stt_beam_size: int = 1
    stt_language: str | None = "en"
    stt_agent_prompt: bool = Field(
        True,
        description="Prompt Whisper with the words of the turn's agent's tools (their descriptions and "
        "handoff targets, pipelines/agents/vocabulary.py), on the chained stt stage and in realtime "
        "sessions with an agent: spoken tool requests are heard right more often (bench/tools.py).",
    )
    realtime_stt_window_s: float = Field(
        20.0,
        ge=0,
        le=30,
        description="Realtime sessions, local Whisper: turns up to this minus 1 s are encoded in a window "
        "this long instead of 30 s (0.56-0.71x the time at the same word error rate: bench/stt_window.py); "
        "0 turns the short windows off. The chained path and /v1/audio keep 30 s.",
    )
    realtime_stt_small_window_s: float = Field(
        10.0,
        ge=0,
        le=30,
        description="A smaller window still for turns that fit in it with 1 s to spare (most questions): "
        "0.44x the 30 s window's time, WER within 0.4 points of the 20 s window on piper and on three "
        "espeak-ng voices (bench/stt_window.py); 0: only realtime_stt_window_s.",
    )

    llm_provider: Provider = "local"
    llm_model: str = Field("smollm2-135m-instruct", description="Local: the bundled GGUF; openai: a name.")
    llm_threads: int = 2
    realtime_llm_threads: int = Field(
        1,
        ge=1,
        description="LLM threads in a realtime pool process. Its event loop decodes 50 audio frames a "
        "second per session while the LLM generates; with llama.cpp on every core its threads wait at "
        "each barrier for the one the loop preempted (~35 ms a token against 14 ms alone on 2 cores). "
        "One thread: 0.85x the voice-to-voice time (bench/realtime_profile.py, side by side).",
    )
    llm_context_tokens: int = 2048
    llm_max_tokens: int = 96
    llm_temperature: float = 0.2
    llm_seed: int = 7

    tts_provider: Provider = "local"
    tts_voice: str = Field("joe", description="Local: the bundled en_US-joe-medium piper voice.")

    openai_api_key: str | None = None
    openai_base_url: str | None = Field(None, description="Any OpenAI-compatible server (vLLM, Ollama...).")
    # Per stage, for provider `openai`; unset falls back to `openai_base_url` / `openai_api_key`, so teams can
    # mix OpenAI with self-hosted servers (vLLM, Ollama, llama.cpp server, speaches) stage by stage.
    stt_openai_base_url: str | None = None
    stt_openai_api_key: str | None = None
    llm_openai_api: Literal["chat_completions", "responses"] = Field(
        "chat_completions", description="Agent model API for provider openai; compatible servers speak chat."
    )
    llm_openai_base_url: str | None = None
    llm_openai_api_key: str | None = None
    tts_openai_base_url: str | None = None
    tts_openai_api_key: str | None = None
    tts_openai_model: str = Field("gpt-4o-mini-tts", description="Model for provider openai (speech).")
    # moderation_provider (none | openai) is declared with the agents and policy settings below.
    moderation_model: str = "omni-moderation-latest"
    moderation_openai_base_url: str | None = None
    moderation_openai_api_key: str | None = None
    # The realtime pool (`voicechain realtime`): `openai` relays each session to OpenAI's realtime model
    # (tools of the agents still run here, transcripts are still stored) instead of the local chain.
    realtime_provider: Provider = "local"
    realtime_openai_url: str = Field(
        "wss://api.openai.com/v1/realtime?model=gpt-realtime",
        description="Full WebSocket URL (with `?model=`) sessions are relayed to for provider openai.",
    )
    realtime_openai_api_key: str | None = Field(None, description="Unset: `openai_api_key`.")
    openai_timeout_s: float = Field(30.0, description="Per request to an OpenAI-compatible server.")
    openai_max_attempts: int = Field(3, description="Attempts per call; 429, 5xx and timeouts retry.")

    # --- WebRTC calls on the realtime pool (`POST /v1/realtime/calls`; docs/scaling.md "WebRTC") -------
    webrtc_ice_servers: str = Field(
        "", description='JSON list, e.g. [{"urls": "turn:turn.example:3478", "username": "u", '
        '"credential": "p"}]; empty: none (no public STUN is ever asked).',
    )  # fmt: skip
    webrtc_advertise_address: str | None = Field(
        None,
        description="Address put in answer candidates instead of the pod's own (1:1 NAT, node IP); unset: "
        "`realtime_advertise_host` if set, else every interface's own address (aioice's host candidates).",
    )
    webrtc_udp_ports: str | None = Field(
        None, description='UDP ports calls bind, e.g. "40000-40099" (what the pod exposes); unset: any.'
    )
    webrtc_ice_timeout_s: float = Field(15.0, description="A call whose ICE has not connected by then ends.")

    # --- browser console at / ----------------------------------------------------------------------
    console_live_open: bool = Field(
        False, description="Let the console mint realtime client secrets without an API key (same origin)."
    )
    console_secret_ttl_s: int = Field(60, description="Lifetime of a console realtime client secret.")
    console_realtime_url: str | None = Field(
        None,
        description="WebSocket URL of the realtime pool for browsers; unset: ws://<host>:<realtime_port>.",
    )

    # --- OpenAI-compatible audio API served by VoiceChain (/v1/audio/*) ---------------------------
    audio_api_timeout_s: float = Field(
        120.0, description="How long /v1/audio/* waits for a stt/tts worker before answering 504."
    )

    # --- agents and policy ---------------------------------------------------------------------------
    agents: str = Field(
        "pipelines.agents.examples:agents", description="`module:attribute` holding the agent definitions."
    )
    default_agent: str = "Assistant"
    policy_block_patterns: CommaList = Field(
        default_factory=list, description="Regular expressions; a reply matching one is replaced."
    )
    policy_safe_reply: str = "Sorry, I can't help with that. Is there anything else I can do for you?"
    review_agents: CommaList = Field(
        default_factory=list,
        description="Agents whose replies wait for a person's approval before they are spoken; `*`: all.",
    )
    moderation_provider: Literal["none", "openai"] = Field(
        "none", description="Moderation of replies besides the rules; `openai`: a `moderations` endpoint."
    )
    agents_tracing: bool = Field(
        False, description="Export Agents SDK traces (to OpenAI's trace endpoint); off unless set."
    )

    # --- webhooks ------------------------------------------------------------------------------------
    webhook_secret: str | None = Field(
        None, description="HMAC-SHA256 key signing webhook POSTs; a job with a callback_url needs it."
    )
    webhook_max_attempts: int = Field(6, description="Delivery attempts per (job, event), backing off.")
    webhook_timeout_s: float = 10.0

    # --- observability -------------------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object a line with job/conversation/session ids."
    )
    log_level: str = "INFO"
    metrics_enabled: bool = Field(
        True, description="Serve Prometheus `/metrics` on the API (unauthenticated: keep it internal)."
    )
    worker_metrics_port: int | None = Field(
        None, description="Serve a worker process group's merged metrics on this port; unset: off."
    )
    metrics_addr: str = Field("0.0.0.0", description="Interface of the worker/realtime metrics port.")
    realtime_metrics_port: int | None = Field(
        None, description="Realtime process i serves /metrics on this port + i; unset: off."
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector (http://host:4318); set: trace jobs across API and stages."
    )

    _split = field_validator(
        "api_keys", "policy_block_patterns", "worker_queues", "review_agents", mode="before"
    )(_split_commas)

    @property
    def resolved_database_url(self) -> str:
        """SQLite inside the data directory unless a database URL is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'voicechain.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def openai_endpoint(self, stage: str) -> tuple[str | None, str | None]:
        """(base_url, api_key) for provider `openai` at `stage` (stt, llm, tts, moderation)."""
        base_url = getattr(self, f"{stage}_openai_base_url") or self.openai_base_url
        api_key = getattr(self, f"{stage}_openai_api_key") or self.openai_api_key
        return base_url, api_key

    @property
    def realtime_openai_key(self) -> str | None:
        """The Bearer key for the realtime relay (provider `openai`)."""
        return self.realtime_openai_api_key or self.openai_api_key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; edges call this, `pipelines` never does."""
    return Settings()
