"""Drive a `RealtimeSession` in process: client events in, validated server events out."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from pipelines.realtime.engines import Engines
from pipelines.realtime.protocol import validate_server_event
from pipelines.realtime.session import RealtimeSession, SessionLimits


class Harness:
    def __init__(self, engines: Engines, limits: SessionLimits | None = None, **kwargs: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self.session = RealtimeSession(
            engines, self._emit, limits=limits or SessionLimits(output_lead_ms=60_000), **kwargs
        )

    async def _emit(self, data: dict[str, Any]) -> None:
        json.dumps(data)  # must be JSON-serialisable as sent
        validate_server_event(data)  # and exactly a GA server event
        self.events.append(data)
        self._arrived.set()

    async def send(self, **data: Any) -> None:
        await self.session.handle(json.dumps(data))

    async def audio(self, pcm: bytes, chunk_ms: int = 20) -> None:
        step = 48 * chunk_ms
        for i in range(0, len(pcm), step):
            await self.send(
                type="input_audio_buffer.append", audio=base64.b64encode(pcm[i : i + step]).decode()
            )

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        async def until() -> dict[str, Any]:
            while len(self.of(kind)) < count:
                self._arrived.clear()
                await self._arrived.wait()
            return self.of(kind)[count - 1]

        return await asyncio.wait_for(until(), timeout)

    async def settle(self, seconds: float = 0.2) -> None:
        await asyncio.sleep(seconds)
