"""JSON log lines carry the ids bound in context, nested and restored."""

from __future__ import annotations

import json
import logging

from pipelines.observability import logs


def _line(record_logger: logging.Logger, message: str, stream) -> dict:
    record_logger.info(message, extra={"attempt": 2})
    return json.loads(stream.getvalue().strip().splitlines()[-1])


def test_json_lines_carry_bound_ids(capsys) -> None:
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter(service="test"))
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("voicechain.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with logs.log_context(job_id="t1", conversation_id="c1"):
            with logs.log_context(stage="stt"):
                inner = _line(logger, "inner", stream)
            outer = _line(logger, "outer", stream)
        after = _line(logger, "after", stream)
    finally:
        logger.removeHandler(handler)
    assert inner | {"job_id": "t1", "conversation_id": "c1", "stage": "stt", "attempt": 2} == inner
    assert inner["message"] == "inner" and inner["service"] == "test" and inner["level"] == "info"
    assert outer["job_id"] == "t1" and "stage" not in outer
    assert "job_id" not in after


def test_bind_ignores_none_and_returns_a_copy() -> None:
    token = logs.bind(job_id="x", session_id=None)
    try:
        view = logs.current()
        view["job_id"] = "changed"
        assert logs.current() == {"job_id": "x"}
    finally:
        logs.unbind(token)
    assert logs.current() == {}
