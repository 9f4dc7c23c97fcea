"""A job's timeline, derived from what the database already holds: the stage rows and the turn's events.

The database stays the only source of truth, so a client that subscribes late, or reconnects with
`Last-Event-ID`, still gets the whole history; the SSE endpoint polls this and sends what is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipelines.storage.models import StageStatus, Turn, TurnStatus

#: Turn-event types (`Turn.events[*]["type"]`) and the names they stream under.
EVENT_NAMES = {
    "tool_call": "tool.called",
    "handoff": "agent.handoff",
    "guardrail": "guardrail.tripped",
    "awaiting_approval": "job.awaiting_approval",
    "approved": "review.approved",
    "rejected": "review.rejected",
}
#: Stage states that end a stage's run (a `stage.finished` event).
STAGE_ENDS = (StageStatus.SUCCEEDED, StageStatus.FAILED, StageStatus.SKIPPED, StageStatus.CANCELLED)
TERMINAL_NAMES = {
    TurnStatus.SUCCEEDED: "job.done",
    TurnStatus.FAILED: "job.failed",
    TurnStatus.REJECTED: "job.rejected",
    TurnStatus.CANCELLED: "job.cancelled",
}


@dataclass(frozen=True)
class JobEvent:
    id: str
    name: str
    at: str
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.id.startswith("status:")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def timeline(turn: Turn) -> list[JobEvent]:
    events = [JobEvent("queued", "job.queued", _iso(turn.created_at), {"job": turn.id})]
    for run in turn.stages:
        if run.started_at is not None:
            data = {"stage": run.stage, "attempt": run.attempts, "worker": run.worker}
            events.append(JobEvent(f"stage:{run.stage}:started", "stage.started", _iso(run.started_at), data))
        if run.status in STAGE_ENDS and run.finished_at:
            data = {
                "stage": run.stage,
                "status": run.status,
                "duration_ms": run.duration_ms,
                "provider": run.provider,
                "error": run.error,
            }
            events.append(
                JobEvent(f"stage:{run.stage}:{run.status}", "stage.finished", _iso(run.finished_at), data)
            )
    for index, event in enumerate(turn.events or []):
        name = EVENT_NAMES.get(str(event.get("type")), f"turn.{event.get('type')}")
        events.append(JobEvent(f"event:{index}", name, str(event.get("at", "")), dict(event)))
    events.sort(key=lambda e: e.at)
    if turn.status in TERMINAL_NAMES:
        data = {"job": turn.id, "status": turn.status, "error": turn.error}
        events.append(
            JobEvent(
                f"status:{turn.status}",
                TERMINAL_NAMES[turn.status],
                _iso(turn.finished_at or turn.updated_at),
                data,
            )
        )
    return events
