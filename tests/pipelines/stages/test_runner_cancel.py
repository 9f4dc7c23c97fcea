"""A cancel committed while a stage runs is never overwritten by that stage's result (SQLite, PostgreSQL).

The window is made real, not simulated: a cancel is committed from another connection at the last moment
before the runner writes the turn's status, i.e. after the runner has read the turn as still running.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from pipelines.settings import Settings
from pipelines.stages.context import StageContext
from pipelines.stages.result import StageResult
from pipelines.stages.runner import Outcome, _begin, _finish, _record_failure
from pipelines.storage.database import get_engine, session_scope
from pipelines.storage.models import StageStatus, TurnStatus
from pipelines.storage.turn_actions import cancel_turn
from pipelines.storage.turns import get_turn, stage_run
from tests.pipelines.storage.test_turns import new_turn


@contextmanager
def cancel_just_before_the_status_write(url: str, turn_id: str) -> Iterator[list[str]]:
    """Commit a cancel of `turn_id` from another connection right before the first write the code under
    test sends (on SQLite a later one would wait for the runner's write lock: no window left there);
    yields a list that records that it happened."""
    engine = get_engine(url)
    fired: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if fired or not statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
            return
        fired.append(statement)
        with session_scope(url) as other:  # a second pooled connection, its own transaction
            cancel_turn(get_turn(other, turn_id))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", before)


def running_turn(url: str, tmp_path) -> tuple[StageContext, str]:
    ctx = StageContext(Settings(database_url=url, data_dir=tmp_path))
    turn_id = new_turn(url)
    assert _begin(ctx, "tts", turn_id, worker="test") is None  # tts running, the turn running
    return ctx, turn_id


def test_a_finishing_stage_keeps_nothing_of_a_turn_cancelled_meanwhile(database_url: str, tmp_path) -> None:
    ctx, turn_id = running_turn(database_url, tmp_path)
    result = StageResult(provider="local", turn_fields={"spoken_text": "too late"}, turn_status="succeeded")
    with cancel_just_before_the_status_write(database_url, turn_id) as fired:
        outcome = _finish(ctx, "tts", turn_id, result)
    assert fired, "the cancel should have been committed inside the runner's window"
    assert outcome is Outcome.STOP
    with session_scope(database_url) as session:
        turn = get_turn(session, turn_id)
        assert turn.status == TurnStatus.CANCELLED  # not overwritten with succeeded
        assert turn.spoken_text is None  # and nothing of the stage's result was kept
        assert stage_run(turn, "tts").status == StageStatus.CANCELLED  # ended, not left running


def test_a_failing_stage_does_not_turn_a_cancel_into_a_failure(database_url: str, tmp_path) -> None:
    ctx, turn_id = running_turn(database_url, tmp_path)
    with cancel_just_before_the_status_write(database_url, turn_id) as fired:
        _record_failure(ctx, "tts", turn_id, RuntimeError("voice broke"), final=True)
    assert fired
    with session_scope(database_url) as session:
        turn = get_turn(session, turn_id)
        assert turn.status == TurnStatus.CANCELLED and turn.error is None
        assert stage_run(turn, "tts").status == StageStatus.CANCELLED


def test_a_stage_starting_as_its_turn_is_cancelled_never_runs(database_url: str, tmp_path) -> None:
    """The cancel lands after the runner read the turn as open, before it marks the stage running."""
    ctx = StageContext(Settings(database_url=database_url, data_dir=tmp_path))
    turn_id = new_turn(database_url)
    with cancel_just_before_the_status_write(database_url, turn_id) as fired:
        outcome = _begin(ctx, "stt", turn_id, worker="test")
    assert fired and outcome is Outcome.STOP
    with session_scope(database_url) as session:
        turn = get_turn(session, turn_id)
        assert turn.status == TurnStatus.CANCELLED
        assert {run.status for run in turn.stages} == {StageStatus.SKIPPED}, "no stage left running"


def test_without_a_cancel_the_stage_settles_the_turn(database_url: str, tmp_path) -> None:
    ctx, turn_id = running_turn(database_url, tmp_path)
    result = StageResult(provider="local", turn_fields={"spoken_text": "hello."}, turn_status="succeeded")
    assert _finish(ctx, "tts", turn_id, result) is Outcome.RAN
    with session_scope(database_url) as session:
        turn = get_turn(session, turn_id)
        assert (turn.status, turn.spoken_text) == (TurnStatus.SUCCEEDED, "hello.")
        assert turn.finished_at is not None and stage_run(turn, "tts").status == StageStatus.SUCCEEDED
