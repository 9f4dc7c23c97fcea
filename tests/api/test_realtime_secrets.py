"""`POST /v1/realtime/client_secrets`: an authenticated caller gets a single-use `ek_` key for the pool."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis.asyncio as aioredis

from pipelines.bootstrap_keys import owner_of
from tests.conftest import API_KEY, Stack
from workers.realtime.auth import consume_client_secret

pytestmark = pytest.mark.integration


def consume(url: str, value: str):
    async def run():
        client = aioredis.Redis.from_url(url)
        try:
            return await consume_client_secret(client, value)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_client_secret_is_short_lived_single_use_and_owned(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post(
            "/v1/realtime/client_secrets",
            json={"expires_after": {"seconds": 60}, "session": {"instructions": "Be brief."}},
        )
    assert response.status_code == 200, response.text
    secret = response.json()
    assert secret["value"].startswith("ek_") and secret["session"] == {"instructions": "Be brief."}
    assert 50 <= secret["expires_at"] - time.time() <= 61
    principal = consume(stack.settings.redis_url or "", secret["value"])
    assert principal is not None and principal.owner == owner_of(API_KEY)
    assert consume(stack.settings.redis_url or "", secret["value"]) is None, (
        "a secret is good for one session"
    )


def test_client_secrets_need_a_key_and_a_sane_lifetime(stack: Stack) -> None:
    assert httpx.post(stack.base_url + "/v1/realtime/client_secrets", json={}).status_code == 401
    with stack.client() as client:
        too_long = client.post("/v1/realtime/client_secrets", json={"expires_after": {"seconds": 99999}})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"]
