"""The consumer watchdog's judgement: stuck only when messages wait, nothing runs, nothing arrives."""

from __future__ import annotations

from workers.watchdog import ConsumerWatchdog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_stuck_only_when_messages_wait_and_nothing_was_received() -> None:
    clock = Clock()
    dog = ConsumerWatchdog(60, busy_grace_s=330, clock=clock)
    clock.now += 61
    assert dog.is_stuck(waiting=3, busy=False)
    assert not dog.is_stuck(waiting=0, busy=False), "an empty queue is simply quiet"
    assert not dog.is_stuck(waiting=3, busy=True), "a long task is not a dead consumer"
    clock.now += 330
    assert dog.is_stuck(waiting=3, busy=True), "past the hard time limit, 'busy' is stale bookkeeping"
    clock.now -= 330
    dog.received()
    assert not dog.is_stuck(waiting=3, busy=False), "it just received a message"
    clock.now += 30
    assert not dog.is_stuck(waiting=3, busy=False)
