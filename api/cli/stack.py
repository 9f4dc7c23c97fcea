"""`voicechain up`: the whole stack as supervised child processes, in the foreground.

Children get their configuration through `VOICECHAIN_*` environment variables, the same way a
deployment configures them, so what runs under `up` is what runs in production. A worker child that
dies is restarted (with a back-off, so a crash loop does not spin); Ctrl-C stops every child cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console

RESTART_BACKOFF_S = (1, 2, 5, 10, 30)


@dataclass
class Child:
    name: str
    command: list[str]
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0

    def start(self, env: dict[str, str]) -> None:
        # a new process group, so Ctrl-C in the terminal reaches us only and we stop children in order
        self.process = subprocess.Popen(self.command, env=env, start_new_session=True)
        self.started_at = time.monotonic()

    def stop(self, timeout_s: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


@dataclass
class Supervisor:
    env: dict[str, str]
    console: Console
    children: list[Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str, command: list[str], *, restart: bool = True) -> None:
        self.children.append(Child(name, command, restart))

    def start_all(self) -> None:
        for child in self.children:
            child.start(self.env)

    def watch(self) -> None:
        """Restart dead children until asked to stop; a child that stays up a minute is forgiven."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                if child.process is None or child.process.poll() is None:
                    if child.process and time.monotonic() - child.started_at > 60:
                        child.restarts = 0
                    continue
                code = child.process.returncode
                if not child.restart:
                    self.console.print(f"[red]{child.name} exited ({code}); stopping[/red]")
                    self.stopping.set()
                    break
                delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
                self.console.print(f"[yellow]{child.name} exited ({code}); restarting in {delay} s[/yellow]")
                child.restarts += 1
                if not self.stopping.wait(delay):
                    child.start(self.env)

    def stop_all(self, timeout_s: float = 20.0) -> None:
        self.stopping.set()
        for child in reversed(self.children):
            child.stop(timeout_s)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
