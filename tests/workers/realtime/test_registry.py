"""Load registration in Redis: each process's live count, least loaded first, gone when stopped."""

from __future__ import annotations

import asyncio
from typing import Any

from workers.realtime.app import PoolLimits, PoolState
from workers.realtime.registry import Registration, least_loaded, workers


def test_least_loaded_and_draining(aioredis: Any) -> None:
    async def main() -> None:
        await aioredis.flushdb()
        busy = PoolState(PoolLimits(max_sessions=4), live=3)
        idle = PoolState(PoolLimits(max_sessions=4), live=1)
        regs = [
            Registration(aioredis, busy, worker="a", host="h", port=1),
            Registration(aioredis, idle, worker="b", host="h", port=2),
        ]
        for r in regs:
            await r.publish()
        assert (await least_loaded(aioredis))["id"] == "b"
        assert await aioredis.ttl("voicechain:realtime:worker:a") > 0
        idle.draining = True
        await regs[1].publish()
        assert (await least_loaded(aioredis))["id"] == "a"
        await regs[0].stop()
        await regs[1].stop()
        assert await workers(aioredis) == []

    asyncio.run(main())
