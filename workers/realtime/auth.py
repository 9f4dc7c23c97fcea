"""Who may open a realtime session: a configured API key, or a short-lived single-use client secret.

Browsers must never hold an API key, so the API mints `ek_...` secrets (`mint_client_secret`) that the
pool accepts once, before they expire. Redis holds them under the SHA-256 of the value (a leaked Redis
dump does not leak usable secrets) with a TTL, and `GETDEL` consumes one atomically: two connections
racing with the same secret cannot both win.

Where the credential travels:
- `Authorization: Bearer <key or ek_...>` (the `openai` package, the Agents SDK, servers);
- WebSocket subprotocols, for browsers that cannot set headers, as OpenAI's browser convention does:
  `new WebSocket(url, ["realtime", "openai-insecure-api-key." + secret])`. The server answers with the
  `realtime` subprotocol and never echoes the one carrying the secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.bootstrap_keys import (
    owner_of,  # one owner rule for the API and the pool: conversations stay readable
)

SECRET_PREFIX = "ek_"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
REALTIME_SUBPROTOCOL = "realtime"
_REDIS_KEY = "voicechain:realtime:secret:"
MAX_TTL_S = 7200  # OpenAI's ceiling for client secrets is two hours


class AsyncRedisLike(Protocol):
    async def set(self, name: str, value: str, ex: int | None = None, nx: bool = False) -> Any: ...

    async def getdel(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its owner name (for stored conversations) and any session preset."""

    owner: str
    kind: str  # "api_key" | "client_secret"
    session: dict[str, Any] = field(default_factory=dict)
    #: Realtime sessions this caller may hold open at once across the pool; None: no limit.
    max_sessions: int | None = None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def mint_client_secret(
    redis: AsyncRedisLike,
    ttl_s: int,
    session_config: Mapping[str, Any] | None = None,
    *,
    owner: str = "client_secret",
) -> tuple[str, int]:
    """Create an `ek_` secret valid for one session within `ttl_s`; return (value, expires_at epoch s).

    `session_config` (a GA `session` object, as `POST /v1/realtime/client_secrets` receives it) is applied
    as the session's starting configuration when the secret is used.
    """
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}")
    value = SECRET_PREFIX + secrets.token_urlsafe(32)
    expires_at = int(time.time()) + ttl_s
    record = {"owner": owner, "expires_at": expires_at, "session": dict(session_config or {})}
    await redis.set(_REDIS_KEY + _digest(value), json.dumps(record), ex=ttl_s, nx=True)
    return value, expires_at


async def consume_client_secret(redis: AsyncRedisLike, value: str) -> Principal | None:
    """Use up a secret: the first caller gets its principal, every later one (and a forgery) gets None."""
    if not value.startswith(SECRET_PREFIX) or len(value) > 200:
        return None
    raw = await redis.getdel(_REDIS_KEY + _digest(value))
    if raw is None:
        return None
    record = json.loads(raw)
    if record["expires_at"] <= time.time():  # Redis expiry is lazy to the second; be exact
        return None
    return Principal(owner=record["owner"], kind="client_secret", session=record.get("session") or {})


async def client_secret_exists(redis: Any, value: str) -> bool:
    """Whether an `ek_` secret is live, without using it up (the edge checks it; the pool consumes it)."""
    if not value.startswith(SECRET_PREFIX) or len(value) > 200:
        return False
    return bool(await redis.exists(_REDIS_KEY + _digest(value)))


def credential(headers: Mapping[str, str], subprotocols: Iterable[str]) -> str | None:
    """The bearer token from the Authorization header, else from an `openai-insecure-api-key.` subprotocol."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for proto in subprotocols:
        if proto.startswith(KEY_SUBPROTOCOL_PREFIX):
            return proto[len(KEY_SUBPROTOCOL_PREFIX) :]
    return None


class Authenticator:
    """Checks a credential against the API keys, then against Redis client secrets."""

    def __init__(
        self,
        api_keys: Iterable[str],
        redis: AsyncRedisLike | None,
        key_lookup: Callable[[str], Principal | None] | None = None,
    ) -> None:
        self._keys = [k for k in api_keys if k]
        self._redis = redis
        self._lookup = key_lookup  # database keys (blocking: run in a thread)

    async def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        if token.startswith(SECRET_PREFIX):
            return await consume_client_secret(self._redis, token) if self._redis is not None else None
        for key in self._keys:
            if hmac.compare_digest(token.encode(), key.encode()):
                return Principal(owner=owner_of(key), kind="api_key")
        if self._lookup is not None:
            return await asyncio.to_thread(self._lookup, token)
        return None
