"""`voicechain up`: the whole stack as supervised child processes, in the foreground.

Children get their configuration through `VOICECHAIN_*` environment variables, the same way a
deployment configures them, so what runs under `up` is what runs in production. A child that dies is
restarted. Like supervisord's `startsecs`, only a child that dies soon after it started (a crash loop)
is restarted with a growing back-off; one that had been running a while (SIGKILLed by the OOM killer or
an operator) comes back at once, however often that happens. Each child's restart is scheduled, never
waited for, so one child's back-off does not hold up another's restart. A child that exits with
`EXIT_CONFIG` (a missing model, a bad setting) is not restarted, since restarting cannot fix it.

Lifetime: every child is tied to this process with `PR_SET_PDEATHSIG` (workers/lifetime.py), so a
SIGKILLed `up` leaves nothing running. SIGINT, SIGTERM and SIGHUP stop the stack: every child is told
at once and all share one budget, after which what is left of each child's process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

from rich.console import Console

from workers.lifetime import EXIT_CONFIG, preexec_die_with_parent

RESTART_BACKOFF_S = (1, 2, 5, 10, 30)
#: A child that ran at least this long before it died was up, not crash-looping: it restarts at the first
#: back-off step. A worker loads its models within this on a loaded 2-core machine; a bad one dies sooner.
STARTED_AFTER_S = 10.0
#: How often the supervisor looks at its children.
WATCH_INTERVAL_S = 0.2
#: How long all children together get to stop before what is left is killed.
STOP_BUDGET_S = 15.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Child:
    name: str
    command: list[str]
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    #: When a dead child is due to start again (monotonic clock); None when none is scheduled.
    restart_at: float | None = None

    def start(self, env: dict[str, str]) -> None:
        # Its own session: Ctrl-C in the terminal reaches `up` only, which stops the children itself.
        # Started from the main thread only: the death signal follows the thread that forked.
        self.process = subprocess.Popen(
            self.command, env=env, start_new_session=True, preexec_fn=preexec_die_with_parent()
        )
        self.started_at = time.monotonic()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM to the child itself: each child stops its own subtree in its own way (Celery's warm
        shutdown, the realtime pool's drain), which a signal to the whole group would cut short."""
        if self.running():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                self.process.send_signal(signal.SIGTERM)

    def wait_until(self, deadline: float, hurry: threading.Event) -> None:
        while self.running() and time.monotonic() < deadline and not hurry.is_set():
            time.sleep(0.05)

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the child's process group (its grandchildren too), then reap."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class Supervisor:
    env: dict[str, str]
    console: Console
    children: list[Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    #: A second stop signal: do not wait for the budget, kill what is left now.
    hurry: threading.Event = field(default_factory=threading.Event)
    started_after_s: float = STARTED_AFTER_S

    def add(self, name: str, command: list[str], *, restart: bool = True) -> None:
        self.children.append(Child(name, command, restart))

    def install_signal_handlers(self) -> None:
        """Explicitly, for all three: a background job of a non-interactive shell starts with SIGINT
        ignored (so Python installs no KeyboardInterrupt), and SIGHUP's default would kill `up` without
        stopping anything (the children would then die by their death signal, uncleanly)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.stopping.is_set():
            self.hurry.set()
        self.stopping.set()

    def start_all(self) -> None:
        for child in self.children:
            if self.stopping.is_set():
                return
            child.start(self.env)

    def watch(self) -> None:
        """Restart dead children until asked to stop (from the main thread: see `Child.start`)."""
        while not self.stopping.wait(WATCH_INTERVAL_S):
            for child in self.children:
                self._tend(child, time.monotonic())
                if self.stopping.is_set():
                    break

    def _tend(self, child: Child, now: float) -> None:
        """Start a child whose restart is due; schedule the restart of one that has just died."""
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                child.start(self.env)
            return
        if child.process is None or child.process.poll() is None:
            return
        code = child.process.returncode
        if code == EXIT_CONFIG:
            self.console.print(
                f"[red]{child.name} cannot run as configured (exit {code}, see its message above); not "
                "restarting it[/red]"
            )
            child.process = None
            return
        if not child.restart:
            self.console.print(f"[red]{child.name} exited ({code}); stopping[/red]")
            self.stopping.set()
            return
        if now - child.started_at >= self.started_after_s:
            child.restarts = 0  # it was up: a death, not a crash loop
        delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
        self.console.print(f"[yellow]{child.name} exited ({code}); restarting in {delay} s[/yellow]")
        child.restarts += 1
        child.restart_at = now + delay

    def stop_all(self, budget_s: float = STOP_BUDGET_S) -> None:
        """Stop every child in parallel within one budget (not one budget per child, in turn)."""
        self.stopping.set()
        deadline = time.monotonic() + budget_s
        for child in self.children:
            child.terminate()
        for child in self.children:
            child.wait_until(deadline, self.hurry)
        for child in self.children:
            if child.running():
                self.console.print(f"[yellow]{child.name} did not stop in time; killing it[/yellow]")
            child.kill_group()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
