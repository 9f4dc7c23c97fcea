"""The FastAPI application factory (`uvicorn --factory api.main:create_app`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api import errors
from api.routes import (
    audio,
    console,
    conversations,
    health,
    job_actions,
    job_events,
    job_list,
    jobs,
    metrics,
    realtime,
    realtime_calls,
    realtime_gateway,
    reviews,
)
from pipelines.observability import logs, tracing
from pipelines.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.log_format == "json":  # text: leave logging to uvicorn (and to pytest in-process)
        logs.configure_logging("json", settings.log_level, service="api")
    tracing.configure_tracing("voicechain-api", settings.otlp_endpoint)
    app = FastAPI(
        title="VoiceChain",
        version="0.1.0",
        description=(
            "Voice agents over a durable Celery chain (stt -> agent -> policy -> tts) and realtime sessions."
        ),
    )
    app.state.settings = settings
    errors.install(app)
    metrics.install(app, settings)
    audio.install(app)
    for module in (health, job_list, jobs, job_actions, job_events, reviews, conversations, audio, realtime):
        app.include_router(module.router)
    app.include_router(realtime_gateway.router)  # WS /v1/realtime: relayed to the realtime pool
    app.include_router(realtime_calls.router)  # WebRTC calls, forwarded to the pool
    console.install(app)
    logging.getLogger("voicechain").info(
        "API ready; database %s", settings.resolved_database_url.split("@")[-1]
    )
    return app
