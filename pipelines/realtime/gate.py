"""A gate in front of the event sink: holds what a speculative response produces until it is adopted.

A response prepared during the user's trailing silence must not be heard (nor enter the history) unless
the turn really ends; if the user goes on speaking, the gate is simply dropped with what it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pipelines.realtime.protocol import Emit

#: A state change to apply in order with the events; it may return an event to send right after.
Action = Callable[[], "dict[str, Any] | None"]
#: Work to finish before the events after it go out (storing a reply before its `response.done`).
AsyncAction = Callable[[], Awaitable[None]]


class _Await:
    def __init__(self, action: AsyncAction) -> None:
        self.action = action


class Gate:
    """Events and state changes pass straight through once open; before that they queue in order."""

    def __init__(self, emit: Emit, *, open_: bool = True) -> None:
        self._emit = emit
        self._open = open_
        self._held: list[dict[str, Any] | Action | _Await] = []
        self.opened = asyncio.Event()
        if open_:
            self.opened.set()

    @property
    def is_open(self) -> bool:
        return self._open

    async def send(self, event: dict[str, Any]) -> None:
        if self._open:
            await self._emit(event)
        else:
            self._held.append(event)

    async def do(self, action: Action) -> None:
        """Run `action` now if open, else when the gate opens (history changes of a speculative reply)."""
        if not self._open:
            self._held.append(action)
        elif (produced := action()) is not None:
            await self._emit(produced)

    async def call(self, action: AsyncAction) -> None:
        """Await `action` now if open, else when the gate opens, before the events queued after it."""
        if self._open:
            await action()
        else:
            self._held.append(_Await(action))

    async def open(self) -> None:
        while self._held:  # sends that arrive while flushing queue behind, keeping their order
            entry = self._held.pop(0)
            if isinstance(entry, _Await):
                await entry.action()
                continue
            produced = entry() if callable(entry) else entry
            if produced is not None:
                await self._emit(produced)
        self._open = True
        self.opened.set()
