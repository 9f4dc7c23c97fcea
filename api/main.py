"""The FastAPI application factory (`uvicorn --factory api.main:create_app`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api import errors
from api.routes import conversations, health, jobs
from pipelines.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="VoiceChain",
        version="0.1.0",
        description=(
            "Voice agents over a durable Celery chain (stt -> agent -> policy -> tts) and realtime sessions."
        ),
    )
    app.state.settings = settings
    errors.install(app)
    for module in (health, jobs, conversations):
        app.include_router(module.router)
    logging.getLogger("voicechain").info(
        "API ready; database %s", settings.resolved_database_url.split("@")[-1]
    )
    return app
