"""Speculation: a reply prepared during the user's trailing silence, adopted if the turn really ends there.

When the VAD first hears a pause, the audio so far is transcribed and a reply is started behind a closed
gate (see `gate.py`): by the time the turn is declared over, its first words are synthesized and only
need releasing. If the user speaks again, the speculation is dropped with everything it held. The
transcript doubles as the words the semantic_vad judge reads (`transcript`).

Only one transcription runs per session at a time: a dropped speculation's transcription is left to
finish (cancelling a thread does nothing) and no other is stacked on the CPU meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from pipelines.realtime.response import Response


@dataclass
class Speculation:
    """One speculative reply: its task (transcribe, then start the response), transcript and response."""

    task: asyncio.Task[None] | None = None
    transcript: str | None = None
    response: Response | None = None
    #: False: transcribe only (semantic_vad reads the words of a session that will not reply)
    replying: bool = True

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.response is not None:
            await self.response.cancel("turn_detected")


class Speculator:
    """Starts, drops and hands over a session's speculation.

    `transcribe(audio)` is the session's STT; `reply(transcript)` builds (not starts) the response that
    would answer it, behind a closed gate."""

    def __init__(
        self,
        transcribe: Callable[[np.ndarray], Awaitable[str]],
        reply: Callable[[str], Response],
    ) -> None:
        self._transcribe = transcribe
        self._reply = reply
        self.current: Speculation | None = None
        self._stt: asyncio.Future[str] | None = None
        self.started = 0  # speculations started (for tests and the bench's profile)

    def start(self, audio: np.ndarray, *, reply: bool = True) -> None:
        if self.current is not None:
            return
        if self._stt is not None and not self._stt.done():
            return  # a dropped speculation's transcription still runs: do not stack another on the CPU
        spec = Speculation(replying=reply)
        spec.task = asyncio.ensure_future(self._run(spec, audio.copy()))
        self.current = spec
        self.started += 1

    async def _run(self, spec: Speculation, audio: np.ndarray) -> None:
        self._stt = asyncio.ensure_future(self._transcribe(audio))  # not cancelled with the speculation
        spec.transcript = await asyncio.shield(self._stt)
        if not spec.transcript or not spec.replying:
            return
        spec.response = self._reply(spec.transcript)
        spec.response.start()

    async def transcript(self) -> str | None:
        """The current speculation's transcript, once known; None if there is no speculation."""
        spec, stt = self.current, self._stt
        if spec is None or stt is None:
            return None
        try:
            await asyncio.shield(stt)
        except Exception:
            return None
        return spec.transcript if spec.transcript is not None else stt.result()

    def take(self) -> Speculation | None:
        """Hand the speculation over (the turn ended); the speculator is then empty."""
        spec, self.current = self.current, None
        return spec

    async def drop(self) -> None:
        spec, self.current = self.current, None
        if spec is not None:
            await spec.cancel()
