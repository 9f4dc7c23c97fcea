"""A stage whose worker dies under it every time (a segfault in a model library, the OOM killer) fails
its turn after `stage_max_crashes` attempts instead of being handed back to the next worker forever (a
stage that segfaulted on one job was redelivered 327 times in a fault run before the AMX fix)."""

from __future__ import annotations

from pipelines.settings import Settings
from pipelines.stages.context import StageContext
from pipelines.stages.runner import Outcome, _begin, run_stage
from pipelines.storage.database import session_scope
from pipelines.storage.models import StageStatus, TurnStatus
from pipelines.storage.turns import get_turn, stage_run
from tests.pipelines.storage.test_turns import new_turn


def crash_while_running(ctx: StageContext, turn_id: str, stage: str) -> None:
    """Begin `stage` and leave it as a killed worker does: `running`, nobody finishing it."""
    assert _begin(ctx, stage, turn_id, worker="doomed") is None


def test_a_stage_left_running_by_dead_workers_fails_at_the_crash_cap(database_url: str, tmp_path) -> None:
    ctx = StageContext(Settings(database_url=database_url, data_dir=tmp_path, stage_max_crashes=3))
    turn_id = new_turn(database_url)
    for _ in range(3):
        crash_while_running(ctx, turn_id, "policy")
    assert run_stage(ctx, "policy", turn_id, worker="next") is Outcome.STOP
    with session_scope(database_url) as session:
        turn = get_turn(session, turn_id)
        run = stage_run(turn, "policy")
        assert turn.status == TurnStatus.FAILED and "died 3 times" in (turn.error or ""), turn.error
        assert run.status == StageStatus.FAILED and run.finished_at is not None
        assert run.attempts == 3  # the give-up is not one more attempt


def test_a_stage_under_the_cap_is_run_again(database_url: str, tmp_path) -> None:
    ctx = StageContext(Settings(database_url=database_url, data_dir=tmp_path, stage_max_crashes=3))
    turn_id = new_turn(database_url)
    crash_while_running(ctx, turn_id, "policy")
    crash_while_running(ctx, turn_id, "policy")
    assert _begin(ctx, "policy", turn_id, worker="next") is None  # a third try still runs
    with session_scope(database_url) as session:
        turn = get_turn(session, turn_id)
        assert turn.status == TurnStatus.RUNNING and stage_run(turn, "policy").attempts == 3
