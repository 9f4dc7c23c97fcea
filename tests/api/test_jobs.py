"""The jobs API refuses bad input with a clear JSON error, enqueues nothing, and scopes jobs to keys."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile
from sqlalchemy import func, select

from pipelines.storage.database import session_scope
from pipelines.storage.models import Turn
from tests.conftest import OTHER_KEY, Stack

pytestmark = pytest.mark.integration


def wav_bytes(seconds: float, rate: int = 16_000, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(buffer, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format=fmt)
    return buffer.getvalue()


def turn_count(stack: Stack) -> int:
    with session_scope(stack.settings.resolved_database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Turn)) or 0)


def lying_wav() -> bytes:
    """A tiny WAV whose header declares ten hours of audio."""
    header = wav_bytes(0.1)
    declared = 10 * 3600 * 16_000 * 2
    return (
        header[:4]
        + struct.pack("<I", declared + 36)
        + header[8:40]
        + struct.pack("<I", declared)
        + header[44:]
    )


BAD_UPLOADS = [
    ("empty", b"", "audio/wav", {422}),
    (
        "random",
        bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)),
        "audio/wav",
        {415, 422},
    ),  # may parse as MP3 sync
    ("text", b"hello, this is not audio at all" * 20, "audio/wav", {415}),
    ("truncated", wav_bytes(1.0)[:30], "audio/wav", {415, 422}),
    ("aiff", wav_bytes(0.5, fmt="AIFF"), "audio/aiff", {415}),
    ("image type", wav_bytes(0.5), "image/png", {415}),
]


@pytest.mark.parametrize(
    ("label", "data", "part_type", "status"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS]
)
def test_bad_audio_is_refused_and_nothing_is_enqueued(stack: Stack, label, data, part_type, status) -> None:
    before = turn_count(stack)
    with stack.client() as client:
        response = client.post("/v1/jobs", files={"file": ("upload.wav", data, part_type)})
    assert response.status_code in status, (label, response.text)
    error = response.json()["error"]
    assert error["message"] and error["code"]
    assert turn_count(stack) == before


def test_lying_header_and_overlong_audio_are_refused(stack: Stack) -> None:
    with stack.client() as client:
        lying = client.post("/v1/jobs", files={"file": ("lie.wav", lying_wav(), "audio/wav")})
        assert lying.status_code in (413, 422) and lying.json()["error"]["code"]
        long_flac = wav_bytes(601, rate=8_000, fmt="FLAC")  # 10 min 1 s of tone: small, but too long
        too_long = client.post("/v1/jobs", files={"file": ("long.flac", long_flac, "audio/flac")})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "too_long"


def test_oversized_upload_and_wrong_content_type(stack: Stack) -> None:
    with stack.client() as client:
        big = client.post(
            "/v1/jobs", files={"file": ("big.wav", b"\0" * (25 * 1024 * 1024 + 10), "audio/wav")}
        )
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        as_json = client.post("/v1/jobs", json={"file": "x"})
        assert as_json.status_code == 415
        missing = client.post("/v1/jobs", files={"other": ("a.wav", wav_bytes(0.5), "audio/wav")})
        assert missing.status_code == 422 and missing.json()["error"]["code"] == "missing_file"
        unknown_agent = client.post(
            "/v1/jobs", files={"file": ("a.wav", wav_bytes(0.5), "audio/wav")}, data={"agent": "Nobody"}
        )
        assert unknown_agent.status_code == 422 and unknown_agent.json()["error"]["code"] == "unknown_agent"


def test_every_route_but_health_needs_a_key(stack: Stack) -> None:
    import httpx

    with httpx.Client(base_url=stack.base_url) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        checks = anonymous.get("/readyz").json()["checks"]  # and each stage's model is installed
        assert checks == dict.fromkeys(("database", "broker", "stt", "agent", "policy", "tts"), "ok")
        for method, path in (
            ("POST", "/v1/jobs"),
            ("GET", "/v1/jobs/x"),
            ("GET", "/v1/jobs/x/audio"),
            ("GET", "/v1/conversations/x"),
        ):
            response = anonymous.request(method, path)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", path
            wrong = anonymous.request(method, path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_idempotency_key_returns_the_same_job_and_keys_do_not_share_jobs(stack: Stack) -> None:
    audio = wav_bytes(0.8)
    with stack.client() as client:
        headers = {"Idempotency-Key": "turn-42"}
        first = client.post("/v1/jobs", files={"file": ("a.wav", audio, "audio/wav")}, headers=headers)
        again = client.post("/v1/jobs", files={"file": ("a.wav", audio, "audio/wav")}, headers=headers)
        assert first.status_code == again.status_code == 202
        assert first.json()["id"] == again.json()["id"] and again.headers["idempotent-replayed"] == "true"
        job = first.json()
    with stack.client(OTHER_KEY) as other:
        assert other.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert other.get(f"/v1/conversations/{job['conversation_id']}").status_code == 404
        reused = other.post(
            "/v1/jobs",
            files={"file": ("a.wav", audio, "audio/wav")},
            data={"conversation_id": job["conversation_id"]},
        )
        assert reused.status_code == 404


def test_openapi_documents_the_upload(stack: Stack) -> None:
    import httpx

    schema = httpx.get(stack.base_url + "/openapi.json").json()
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "file" in body["schema"]["properties"]
