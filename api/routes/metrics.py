"""`GET /metrics` (Prometheus) and the request middleware that binds log ids and opens a trace span.

`/metrics` is unauthenticated, like every Prometheus target: it is for the cluster network only. The
deploy files expose only `/v1`, `/healthz` and `/readyz` through the ingress; do not route `/metrics`
publicly. It carries no request content, only counts, durations, queue depths and open job counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from pipelines.observability import logs, tracing
from pipelines.observability.metrics import JobStatusCollector, QueueDepthCollector, process_registry
from pipelines.settings import STAGES, WEBHOOK_QUEUE, Settings
from pipelines.storage.database import session_scope
from pipelines.storage.models import Turn, TurnStatus
from workers.broker import queue_depths
from workers.celery_app import broker_url

router = APIRouter(tags=["operations"])
OPEN_STATUSES = (TurnStatus.QUEUED, TurnStatus.RUNNING, TurnStatus.AWAITING_APPROVAL)


class _Delegate(Collector):
    """Exposes another registry's metrics (the process-wide one) inside the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self):  # type: ignore[no-untyped-def]
        yield from self._registry.collect()

    def describe(self):  # type: ignore[no-untyped-def]
        return []


def _open_jobs(settings: Settings) -> dict[str, int]:
    with session_scope(settings.resolved_database_url) as session:
        rows = session.execute(
            select(Turn.status, func.count()).where(Turn.status.in_(OPEN_STATUSES)).group_by(Turn.status)
        ).all()
    return {status: 0 for status in OPEN_STATUSES} | {status: int(n) for status, n in rows}


def build_registry(settings: Settings) -> CollectorRegistry:
    """The API's view: its own process metrics plus queue depths and open jobs read at scrape time."""
    url, queues = broker_url(settings), (*STAGES, WEBHOOK_QUEUE)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Delegate(process_registry()))
    # the broker in force (RabbitMQ or Redis), not the coordination Redis: they differ under amqp://
    registry.register(QueueDepthCollector(lambda: queue_depths(url, queues, timeout_s=2)))
    registry.register(JobStatusCollector(lambda: _open_jobs(settings)))
    return registry


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format; for the internal network only (see the module docstring)."""
    body = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the middleware (always) and `/metrics` (when `metrics_enabled`)."""

    @app.middleware("http")
    async def bind_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        job_id = request.path_params.get("job_id") if request.path_params else None
        parts = request.url.path.split("/")
        if job_id is None and len(parts) > 3 and parts[1:3] == ["v1", "jobs"]:
            job_id = parts[3]
        with (
            logs.log_context(request_id=request_id, job_id=job_id),
            tracing.span(
                f"{request.method} {request.url.path if job_id is None else '/v1/jobs/{id}'}",
                carrier=dict(request.headers),
                **{"http.method": request.method, "voicechain.job_id": job_id},
            ) as span,
        ):
            response = await call_next(request)
            if span is not None:
                span.set_attribute("http.status_code", response.status_code)
        response.headers["X-Request-ID"] = request_id
        return response

    if settings.metrics_enabled:
        app.state.metrics_registry = build_registry(settings)
        app.include_router(router)
