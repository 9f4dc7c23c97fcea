"""A job's progress as Server-Sent Events, read from the database (late subscribers get the history)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.deps import PrincipalDep, SessionDep, SettingsDep
from pipelines.storage.database import session_scope
from pipelines.storage.job_events import JobEvent, timeline
from pipelines.storage.turns import get_turn

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

POLL_S = 0.25
KEEPALIVE_S = 15.0


def _frame(event: JobEvent) -> str:
    data = json.dumps({"at": event.at, **event.data}, default=str)
    return f"id: {event.id}\nevent: {event.name}\ndata: {data}\n\n"


def _load(database_url: str, job_id: str) -> list[JobEvent]:
    with session_scope(database_url) as session:
        return timeline(get_turn(session, job_id))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job_id: str,
    settings: SettingsDep,
    session: SessionDep,
    principal: PrincipalDep,
    last_event_id: Annotated[str | None, Header()] = None,
    timeout_s: Annotated[float, Query(gt=0, le=3600)] = 600,
) -> StreamingResponse:
    """`stage.started`, `stage.finished`, `tool.called`, `agent.handoff`, `guardrail.tripped`,
    `job.awaiting_approval`, `review.approved`/`review.rejected`, then one of `job.done`, `job.failed`,
    `job.rejected`, `job.cancelled`, after which the stream ends. Reconnect with `Last-Event-ID`."""
    get_turn(session, job_id, owner=principal.owner)  # 404 for an unknown or foreign job, before streaming
    url = settings.resolved_database_url

    async def stream() -> AsyncIterator[str]:
        sent: set[str] = set()
        if last_event_id:
            history = await run_in_threadpool(_load, url, job_id)
            ids = [e.id for e in history]
            sent.update(ids[: ids.index(last_event_id) + 1] if last_event_id in ids else ())
        loop = asyncio.get_running_loop()
        deadline, quiet_since = loop.time() + timeout_s, loop.time()
        while loop.time() < deadline:
            for event in await run_in_threadpool(_load, url, job_id):
                if event.id in sent:
                    continue
                sent.add(event.id)
                quiet_since = loop.time()
                yield _frame(event)
                if event.terminal:
                    return
            if loop.time() - quiet_since > KEEPALIVE_S:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
