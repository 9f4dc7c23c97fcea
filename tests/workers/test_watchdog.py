"""The consumer watchdog's judgement: stuck only when messages wait, nothing runs, nothing arrives."""

from __future__ import annotations

from workers.watchdog import ConsumerWatchdog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_stuck_only_when_idle_with_waiting_messages_and_nothing_received() -> None:
    clock = Clock()
    dog = ConsumerWatchdog(60, clock=clock)
    clock.now += 61
    assert dog.is_stuck(waiting=3, busy=False)
    assert not dog.is_stuck(waiting=0, busy=False), "an empty queue is simply quiet"
    assert not dog.is_stuck(waiting=3, busy=True), "a long task is not a dead consumer"
    dog.received()
    assert not dog.is_stuck(waiting=3, busy=False), "it just received a message"
    clock.now += 30
    assert not dog.is_stuck(waiting=3, busy=False)
