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


def test_a_process_bound_to_every_interface_publishes_a_routable_address() -> None:
    """0.0.0.0 in the registry would send the API to its own loopback: publish a real address instead."""
    import ipaddress

    from workers.realtime.registry import advertised_host

    assert advertised_host("0.0.0.0", "pool-0.voicechain.svc") == "pool-0.voicechain.svc"
    assert advertised_host("10.1.2.3") == "10.1.2.3"
    assert advertised_host("127.0.0.1") == "127.0.0.1"
    found = advertised_host("0.0.0.0")
    assert not ipaddress.ip_address(found).is_unspecified
    assert ipaddress.ip_address(found).version == 4
