"""Per-key limits kept in Redis, so every API replica and realtime process shares one count.

- Requests a minute: a fixed one-minute window per owner (`INCR` + `EXPIRE`); over the limit is 429
  with `Retry-After` = seconds to the next window.
- Realtime sessions open at once: a sorted set per owner of session id -> lease expiry. A session
  renews its lease while it runs, so a process killed with its sessions open frees them within one lease
  instead of leaking the count forever (a plain counter would).

Redis down: limits fail open (logged), because refusing every request when the broker blinks would turn
a broker outage into an API outage, and the outbox path must keep accepting jobs. Each check is bounded
by short socket timeouts, and after a failure Redis is not asked again for `BREAKER_S`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

RATE_PREFIX = "voicechain:ratelimit:"
SESSIONS_PREFIX = "voicechain:rtsessions:"
WINDOW_S = 60
BREAKER_S = 2.0
SESSION_LEASE_S = 60

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return -math.ceil(tonumber(oldest[2]) - tonumber(ARGV[1]))
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0


class RateLimiter:
    """Fixed-window requests-a-minute per owner."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, retry_on_timeout=False
        )
        self._down_until = 0.0

    def hit(self, owner: str, limit: int | None) -> Verdict:
        if limit is None or limit <= 0:
            return Verdict(True)
        now = time.time()
        if now < self._down_until:
            return Verdict(True)
        window = int(now // WINDOW_S)
        key = f"{RATE_PREFIX}{owner}:{window}"
        try:
            pipe = self._client.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_S + 1)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("rate limit not checked (redis: %s); allowing", exc)
            self._down_until = now + BREAKER_S
            return Verdict(True)
        if count > limit:
            return Verdict(False, max(1, math.ceil((window + 1) * WINDOW_S - now)))
        return Verdict(True)

    def close(self) -> None:
        self._client.close()


class SessionLimiter:
    """Concurrent realtime sessions per owner, with leases renewed by the running session."""

    def __init__(self, client: aioredis.Redis | Any, lease_s: int = SESSION_LEASE_S) -> None:
        self._client = client
        self.lease_s = lease_s

    async def acquire(self, owner: str, session_id: str, limit: int | None) -> Verdict:
        if limit is None or limit <= 0:
            return Verdict(True)
        now = time.time()
        try:
            args = (now, now + self.lease_s, limit, session_id, self.lease_s * 2)
            result = int(await self._client.eval(_ACQUIRE, 1, SESSIONS_PREFIX + owner, *args))
        except redis.RedisError as exc:
            log.warning("session limit not checked (redis: %s); allowing", exc)
            return Verdict(True)
        return Verdict(True) if result > 0 else Verdict(False, max(1, -result))

    async def renew(self, owner: str, session_id: str) -> None:
        try:
            await self._client.zadd(
                SESSIONS_PREFIX + owner, {session_id: time.time() + self.lease_s}, xx=True
            )
        except redis.RedisError as exc:
            log.warning("session lease not renewed: %s", exc)

    async def release(self, owner: str, session_id: str) -> None:
        try:
            await self._client.zrem(SESSIONS_PREFIX + owner, session_id)
        except redis.RedisError as exc:
            log.warning("session lease not released (expires by itself): %s", exc)
