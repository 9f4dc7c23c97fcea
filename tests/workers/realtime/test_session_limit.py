"""A key's concurrent realtime sessions are capped across the pool (a lease per session in Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis_asyncio
import websockets

from pipelines.quotas import SessionLimiter
from tests.pipelines.realtime.fakes import fake_engines
from tests.workers.realtime.conftest import run
from tests.workers.realtime.test_server import _status_of
from workers.realtime.auth import Authenticator, Principal

LIMITED_KEY = "vck_limited_to_one_session"


def lookup(token: str) -> Principal | None:
    return Principal(owner="ak_limited", kind="api_key", max_sessions=1) if token == LIMITED_KEY else None


def test_second_session_of_a_limited_key_gets_429_until_the_first_ends(
    serve_app: Any, redis_server: str
) -> None:
    headers = {"Authorization": f"Bearer {LIMITED_KEY}"}
    limiter = SessionLimiter(redis_asyncio.Redis(unix_socket_path=redis_server))
    authenticator = Authenticator([], None, key_lookup=lookup)
    served = serve_app(fake_engines(), session_limiter=limiter, authenticator=authenticator)

    async def main() -> None:
        base = served.ws_base
        async with websockets.connect(base + "/realtime?model=x", additional_headers=headers) as first:
            await first.recv()  # session.created: the lease is held
            assert await _status_of(base, headers) == 429
        # the server ends the session (stores what was said, then releases the lease) after the client's
        # close returns: allow it a moment
        for _ in range(40):
            if (status := await _status_of(base, headers)) == 101:
                break
            await asyncio.sleep(0.05)
        assert status == 101, "the lease is released when the session ends"

    with served:
        run(main())
