"""A session's responses: one at a time, answering the user's words, adopting a speculation, cancellable.

A response starts when a turn ends (or on `response.create`). It first waits for the transcripts still
running, so it answers what the user said; then it either releases the speculative reply prepared for
exactly those words (`Speculation`) or starts a new one. `interrupt` (barge-in, `response.cancel`) stops
it at once. What to build, what the user said and what to do after a response are the session's: they
come in as callables, so this part is driven alone in tests with events in and events out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pipelines.providers.base import ChatMessage
from pipelines.realtime.config import SessionConfig, with_response_overrides
from pipelines.realtime.gate import Emit, Gate
from pipelines.realtime.response import Outcome, Response
from pipelines.realtime.speculation import Speculation

Build = Callable[[SessionConfig, list[ChatMessage], Gate], Response]


class Responses:
    def __init__(
        self,
        *,
        send: Emit,
        build: Build,
        config: Callable[[], SessionConfig],
        history: Callable[[SessionConfig], list[ChatMessage]],
        last_user_text: Callable[[], str],
        pending: Callable[[], set[asyncio.Task[None]]],
        after: Callable[[Outcome, Response], Awaitable[None]],
    ) -> None:
        """`history(config)`: the messages a response answers; `last_user_text()`: the user's latest
        words; `pending()`: transcriptions still running; `after`: what follows a finished response."""
        self._send, self._build, self._config = send, build, config
        self._history, self._last_user_text, self._pending, self._after = (
            history,
            last_user_text,
            pending,
            after,
        )
        self.current: Response | None = None
        self._task: asyncio.Task[None] | None = None
        self._interrupt_reason = "client_cancelled"

    @property
    def busy(self) -> bool:
        """A response is running or about to (waiting on the transcription it answers)."""
        return self._task is not None and not self._task.done()

    def start(
        self, *, overrides: Any = None, spec: Speculation | None = None, skip_if_silent: bool = False
    ) -> None:
        self._task = asyncio.ensure_future(self._respond(overrides, spec, skip_if_silent))

    async def _respond(self, overrides: Any, spec: Speculation | None, skip_if_silent: bool) -> None:
        try:
            if pending := self._pending():  # answer the user's words, so wait until they are known
                await asyncio.wait(list(pending))
        except asyncio.CancelledError:
            if spec is not None:
                await spec.cancel()
            if not skip_if_silent:  # the client asked for this response: tell it how it ended
                unstarted = self._build(self._config(), [], Gate(self._send))
                await unstarted.cancel_unstarted(self._interrupt_reason)
            raise
        last = self._last_user_text()
        if skip_if_silent and not last:
            if spec is not None:
                await spec.cancel()
            return  # noise, not words: answering it would make the assistant talk to itself
        if spec is not None and spec.response is not None and spec.transcript == last:
            response = spec.response
            self.current = response
            await response.adopt()
        else:
            if spec is not None:
                await spec.cancel()
            config = with_response_overrides(self._config(), overrides)
            response = self._build(config, self._history(config), Gate(self._send))
            self.current = response
            response.start()
        try:
            outcome = await response.wait()
        except asyncio.CancelledError:
            outcome = await response.cancel("client_cancelled")
        finally:
            if self.current is response:
                self.current = None
        await self._after(outcome, response)

    async def interrupt(self, reason: str) -> None:
        """Cancel the response now (barge-in, `response.cancel`), keeping in history only what was heard."""
        self._interrupt_reason = reason
        task = self._task
        if task is not None and not task.done():
            await asyncio.sleep(0)  # a respond task created just now must reach its first await
        response = self.current
        if response is not None:
            await response.cancel(reason)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
