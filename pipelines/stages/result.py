"""What a stage hands back to the runner: the turn fields it sets, and the artifacts it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class StageError(Exception):
    """A stage could not finish. `transient` errors are retried by the queue; the others fail the turn."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class ArtifactRecord:
    kind: str
    path: str
    content_type: str
    size_bytes: int
    sha256: str
    sample_rate: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class StageResult:
    provider: str
    turn_fields: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    artifacts: tuple[ArtifactRecord, ...] = ()
    events: tuple[dict[str, Any], ...] = ()
    #: The status the turn takes when this stage finishes: `succeeded` from the last stage, or
    #: `awaiting_approval` from a review hold that ends the chain until a human decides.
    turn_status: str | None = None
