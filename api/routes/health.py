"""Liveness and readiness: readiness checks what a request needs: the broker in force (RabbitMQ or
Redis), the coordination Redis when that is another server, the database, and a model for every stage
of the chain (found on disk, never loaded: the API process loads no model)."""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SettingsDep
from pipelines.providers.preflight import chain_problems
from pipelines.settings import QUEUES, STAGES, Settings
from pipelines.storage.database import get_engine
from workers.broker import BrokerUnavailable, amqp_queue_problems, queue_depths
from workers.celery_app import broker_url, is_amqp, queue_arguments, redis_url

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
    checks["broker"] = _broker_check(settings)
    if is_amqp(broker_url(settings)):  # Redis still holds liveness keys, locks and the realtime registry
        checks["redis"] = _redis_check(settings)
    problems = chain_problems(settings)
    for stage in ("stt", "agent", "policy", "tts"):
        checks[stage] = str(problems[stage]) if stage in problems else "ok"
    return checks


def _broker_check(settings: Settings) -> str:
    """Ask the broker in force (RabbitMQ or Redis) what waits in the stage queues: a real round trip.
    On RabbitMQ also whether it takes the queues as the workers declare them (an older VoiceChain's
    queues lack `x-max-priority`, and then nothing can be published or consumed)."""
    url = broker_url(settings)
    try:
        queue_depths(url, STAGES, timeout_s=2)
        problems = amqp_queue_problems(url, QUEUES, queue_arguments(url), timeout_s=2) if is_amqp(url) else {}
    except BrokerUnavailable as exc:
        return f"error: {type(exc.__cause__ or exc).__name__}"
    if problems:
        names = ", ".join(sorted(problems))
        return (
            f"error: queue {names} exists with other arguments than {queue_arguments(url)} (declared by an "
            "older VoiceChain?): drain and delete it, see docs/scaling.md"
        )
    return "ok"


def _redis_check(settings: Settings) -> str:
    try:
        client = redis.Redis.from_url(redis_url(settings), socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


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
