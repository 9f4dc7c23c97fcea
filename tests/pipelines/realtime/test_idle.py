"""The idle timer alone: it fires once after the unplayed audio plus the timeout, and not when cancelled
or re-armed."""

from __future__ import annotations

import asyncio

from pipelines.realtime.idle import IdleTimer


async def _collect(fired: list[float], started: float) -> None:
    fired.append(asyncio.get_running_loop().time() - started)


def test_fires_after_the_unplayed_audio_and_the_timeout() -> None:
    async def scenario() -> list[float]:
        fired: list[float] = []
        started = asyncio.get_running_loop().time()
        timer = IdleTimer(lambda: _collect(fired, started))
        timer.arm(unplayed_ms=100, idle_timeout_ms=50)
        await asyncio.sleep(0.3)
        return fired

    fired = asyncio.run(scenario())
    assert len(fired) == 1 and fired[0] >= 0.15


def test_cancelled_or_rearmed_it_fires_only_for_the_last_arming() -> None:
    async def scenario() -> list[float]:
        fired: list[float] = []
        started = asyncio.get_running_loop().time()
        timer = IdleTimer(lambda: _collect(fired, started))
        timer.arm(unplayed_ms=0, idle_timeout_ms=50)
        timer.cancel()  # speech started
        timer.arm(unplayed_ms=0, idle_timeout_ms=50)
        timer.arm(unplayed_ms=-30, idle_timeout_ms=100)  # audio already played: no negative wait
        await asyncio.sleep(0.3)
        return fired

    fired = asyncio.run(scenario())
    assert len(fired) == 1 and fired[0] >= 0.1
