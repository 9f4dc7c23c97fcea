from __future__ import annotations

import json

from pipelines import webhooks
from pipelines.storage.models import Turn, TurnStatus


def test_signature_round_trip_and_tamper_and_age() -> None:
    turn = Turn(id="job_1", conversation_id="conv_1", agent="Assistant", status=TurnStatus.SUCCEEDED)
    body, headers = webhooks.encode(turn, "job.succeeded", "s3cret", now=1_700_000_000)
    header = headers[webhooks.SIGNATURE_HEADER]
    assert header.startswith("t=1700000000,v1=")
    assert json.loads(body)["timestamp"] == 1_700_000_000
    assert webhooks.verify("s3cret", header, body, now=1_700_000_010)
    assert not webhooks.verify("other", header, body, now=1_700_000_010)
    assert not webhooks.verify("s3cret", header, body + b" ", now=1_700_000_010)
    assert not webhooks.verify("s3cret", header, body, now=1_700_009_999)
