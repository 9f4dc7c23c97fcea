"""`idle_timeout_ms` of server_vad: when the user says nothing for that long after a reply has been heard,
the session acts as if a turn ended (`input_audio_buffer.timeout_triggered`, then a response).

The wait counts from the end of playback, not from `response.done`: audio still queued for the client
is time the user spends listening, not silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class IdleTimer:
    """At most one pending timeout per session; arming again, or speech, replaces or cancels it."""

    def __init__(self, fire: Callable[[], Awaitable[None]]) -> None:
        self._fire = fire
        self._task: asyncio.Task[None] | None = None

    def arm(self, *, unplayed_ms: float, idle_timeout_ms: int) -> None:
        self.cancel()
        self._task = asyncio.ensure_future(self._wait((max(0.0, unplayed_ms) + idle_timeout_ms) / 1000))

    async def _wait(self, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        await self._fire()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
