"""Listing recent jobs (the console's jobs view); kept apart from `jobs.py`, which owns single jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.deps import PrincipalDep, SessionDep
from api.schemas import JobDocument
from pipelines.storage.models import Turn

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobDocument]


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    source: Annotated[Literal["batch", "realtime"] | None, Query()] = None,
) -> JobList:
    """The caller's most recent turns, newest first, each with its stage timeline and policy verdict;
    realtime turns are included unless `source` narrows the list."""
    query = (
        select(Turn)
        .where(Turn.owner == principal.owner)
        .order_by(Turn.created_at.desc())
        .limit(limit)
        .options(selectinload(Turn.stages), selectinload(Turn.artifacts))
    )
    if source is not None:
        query = query.where(Turn.source == source)
    return JobList(data=[JobDocument.of(turn) for turn in session.scalars(query)])
