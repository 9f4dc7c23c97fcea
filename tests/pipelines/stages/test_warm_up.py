"""A worker that serves the agent queue loads its router at start, so the first turn pays no fit."""

from __future__ import annotations

from pipelines.settings import Settings
from pipelines.stages.context import StageContext


def test_agent_warm_up_fits_the_router(tmp_path) -> None:
    ctx = StageContext(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/db.sqlite"))
    assert not ctx.agents.router.ready
    ctx.warm_up(("agent",))
    assert ctx.agents.router.ready
