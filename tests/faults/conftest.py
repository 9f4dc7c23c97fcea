"""Fault tests: each gets a fresh stack of real processes (see `harness.FaultStack`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.harness import FaultStack


@pytest.fixture
def question(speech) -> bytes:
    """One short spoken question, reused by every turn so the figures measure the chain, not the audio."""
    return speech.wav("Hello there.").read_bytes()


@pytest.fixture
def fault_stack(tmp_path, sqlite_url: str) -> Iterator[FaultStack]:
    stack = FaultStack(tmp_path, sqlite_url).start()
    try:
        yield stack
    finally:
        stack.stop()


def report(name: str, **figures: object) -> None:
    """One line a test, greppable from the CI log: `FAULT-FIGURES <test> key=value ...`."""
    print("\nFAULT-FIGURES", name, " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
