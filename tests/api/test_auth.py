"""Keys from the database: hashed at rest, scoped, rate limited, revocable; and owners do not mix."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select

from api.deps import required_scope
from pipelines.storage.api_keys import create_key, hash_key, revoke_key
from pipelines.storage.database import session_scope
from pipelines.storage.models import ApiKey
from tests.api.test_jobs import wav_bytes
from tests.conftest import API_KEY, Stack, settings_env

pytestmark = pytest.mark.integration


def new_key(stack: Stack, *scopes: str, rate: int | None = None, revoked: bool = False) -> str:
    with session_scope(stack.settings.resolved_database_url) as session:
        row, plaintext = create_key(session, name="test", scopes=scopes, rate_limit_per_minute=rate)
        if revoked:
            revoke_key(session, row.id)
    return plaintext


def v1_routes(stack: Stack) -> list[tuple[str, str, str]]:
    """(method, path with ids filled in, scope) of every documented /v1 route."""
    schema = httpx.get(stack.base_url + "/openapi.json").json()
    routes = []
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        scope = required_scope(path)
        for method in operations:
            concrete = path.replace("{job_id}", "job_x").replace("{conversation_id}", "c")
            routes.append((method.upper(), concrete, scope))
    return routes


def test_keys_are_stored_hashed(stack: Stack) -> None:
    key = new_key(stack, "jobs")
    with session_scope(stack.settings.resolved_database_url) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.hash == hash_key(key)))
        assert row is not None and key not in (row.hash, row.name, row.id)


def test_every_route_refuses_missing_wrong_revoked_and_out_of_scope_keys(stack: Stack) -> None:
    revoked = new_key(stack, "jobs", "audio", "realtime", "admin", revoked=True)
    only = {
        "jobs": new_key(stack, "audio", "realtime"),
        "audio": new_key(stack, "jobs", "realtime"),
        "realtime": new_key(stack, "jobs", "audio"),
        "admin": new_key(stack, "jobs", "audio", "realtime"),
    }
    routes = v1_routes(stack)
    assert len(routes) >= 8, routes
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        for method, path, scope in routes:
            missing = client.request(method, path)
            assert missing.status_code == 401, (method, path, missing.text)
            assert missing.json()["error"]["code"] == "missing_api_key"
            for bad in ("nope", "vck_" + "x" * 43, revoked):
                wrong = client.request(method, path, headers={"Authorization": f"Bearer {bad}"})
                assert wrong.status_code == 401, (method, path, bad, wrong.text)
                assert wrong.json()["error"]["code"] == "invalid_api_key"
            out = client.request(method, path, headers={"Authorization": f"Bearer {only[scope]}"})
            assert out.status_code == 403, (method, path, out.text)
            assert out.json()["error"]["code"] == "insufficient_scope"


def test_a_database_key_works_and_cannot_read_another_keys_jobs(stack: Stack) -> None:
    alice, bob = new_key(stack, "jobs"), new_key(stack, "jobs")
    with stack.client(alice) as client:
        created = client.post("/v1/jobs", files={"file": ("a.wav", wav_bytes(0.5), "audio/wav")})
        assert created.status_code == 202, created.text
        job = created.json()
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 200
        assert client.get(f"/v1/conversations/{job['conversation_id']}").status_code == 200
        assert job["id"] in {j["id"] for j in client.get("/v1/jobs").json()["data"]}
    for other in (bob, API_KEY):
        with stack.client(other) as client:
            assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
            assert client.get(f"/v1/jobs/{job['id']}/audio").status_code == 404
            assert client.get(f"/v1/conversations/{job['conversation_id']}").status_code == 404
            assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
            assert client.post(f"/v1/jobs/{job['id']}/retry").status_code == 404
            assert job["id"] not in {j["id"] for j in client.get("/v1/jobs").json()["data"]}


def test_rate_limit_answers_429_with_retry_after(stack: Stack) -> None:
    key = new_key(stack, "jobs", rate=3)
    with stack.client(key) as client:
        statuses = [client.get("/v1/jobs/none").status_code for _ in range(3)]
        assert statuses == [404, 404, 404]
        limited = client.get("/v1/jobs/none")
    if limited.status_code != 429:  # the minute rolled over between the requests: one more window
        time.sleep(0.5)
        with stack.client(key) as client:
            for _ in range(4):
                limited = client.get("/v1/jobs/none")
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    with stack.client(new_key(stack, "jobs", rate=3)) as fresh:  # limits are per key
        assert fresh.get("/v1/jobs/none").status_code == 404


def test_keys_cli_create_list_revoke(stack: Stack) -> None:
    env = settings_env(stack.settings)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "keys", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    created = cli("create", "--name", "cli-test", "--scopes", "jobs,audio", "--rate-limit", "100")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    key_id = created.stdout.split()[1]
    assert key.startswith("vck_") and key_id.startswith("ak_")
    with stack.client(key) as client:
        assert client.get("/v1/jobs").status_code == 200
    listed = cli("list", "--json")
    assert listed.returncode == 0 and key_id in listed.stdout and key not in listed.stdout
    assert cli("revoke", key_id).returncode == 0
    with stack.client(key) as client:
        assert client.get("/v1/jobs").status_code == 401
    assert cli("create", "--name", "x", "--scopes", "everything").returncode != 0
