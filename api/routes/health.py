"""Liveness and readiness: readiness checks what a request needs: the broker, the database, and a model
for every stage of the chain (found on disk, never loaded: the API process loads no model)."""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SettingsDep
from pipelines.providers.preflight import chain_problems
from pipelines.settings import Settings
from pipelines.storage.database import get_engine
from workers.celery_app import DEFAULT_BROKER

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check(settings: Settings) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with get_engine(settings.resolved_database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        client = redis.Redis.from_url(
            settings.redis_url or DEFAULT_BROKER, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
        client.close()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    problems = chain_problems(settings)
    for stage in ("stt", "agent", "policy", "tts"):
        checks[stage] = str(problems[stage]) if stage in problems else "ok"
    return checks


@router.get("/readyz")
async def readyz(settings: SettingsDep) -> JSONResponse:
    """Ready when the database and the broker answer and every stage's model is installed; 503 with
    what failed otherwise (a missing model says how to install it)."""
    checks = await run_in_threadpool(_check, settings)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )
