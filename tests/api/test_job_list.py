"""`GET /v1/jobs`: the caller's recent jobs, newest first, never another key's."""

from __future__ import annotations

import pytest

from tests.api.test_jobs import wav_bytes
from tests.conftest import OTHER_KEY, Stack

pytestmark = pytest.mark.integration


def test_lists_own_jobs_newest_first(stack: Stack) -> None:
    with stack.client() as client:
        ids = [
            client.post("/v1/jobs", files={"file": (f"{n}.wav", wav_bytes(0.5), "audio/wav")}).json()["id"]
            for n in range(2)
        ]
        listed = client.get("/v1/jobs", params={"limit": 5}).json()
        assert listed["object"] == "list"
        assert [job["id"] for job in listed["data"][:2]] == ids[::-1]
        assert {"stages", "policy", "audio_url", "status"} <= set(listed["data"][0])
        assert client.get("/v1/jobs", params={"limit": 0}).status_code == 422
    with stack.client(OTHER_KEY) as other:
        assert not {job["id"] for job in other.get("/v1/jobs").json()["data"]} & set(ids)
