"""Children tied to their parent with PR_SET_PDEATHSIG die with it, whatever kills the parent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from api.cli import embedded_redis
from api.cli.stack import EXIT_CONFIG, Supervisor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from pathlib import Path
    from api.cli import embedded_redis
    from workers.lifetime import preexec_die_with_parent
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                               start_new_session=True, preexec_fn=preexec_die_with_parent())
    redis, url = embedded_redis.start(Path(sys.argv[1]))
    print(sleeper.pid, redis.pid, url.rsplit(":", 1)[1].split("/")[0], flush=True)
    time.sleep(600)
    """
)


def test_children_in_their_own_session_die_when_the_parent_is_sigkilled(tmp_path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "redis")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        sleeper, redis, port = (int(x) for x in parent.stdout.readline().split())
        children = [psutil.Process(sleeper), psutil.Process(redis)]
        assert all(child.ppid() == parent.pid for child in children)
        parent.kill()
        parent.wait(10)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"outlived their parent: {alive}"
        embedded_redis.stop(embedded_redis.start(tmp_path / "redis2", port)[0])  # the port is free again
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_child_that_cannot_run_as_configured_is_not_restarted() -> None:
    from rich.console import Console

    supervisor = Supervisor(env=dict(os.environ), console=Console(quiet=True))
    supervisor.add("broken", [sys.executable, "-c", f"import sys; sys.exit({EXIT_CONFIG})"])
    supervisor.add("fine", [sys.executable, "-c", "import time; time.sleep(600)"])
    supervisor.start_all()
    first = supervisor.children[0].process
    watcher = threading.Thread(target=supervisor.watch)
    watcher.start()
    try:
        time.sleep(3)  # a restart would come after 1 s
        assert (
            supervisor.children[0].process is None and first is not None and first.returncode == EXIT_CONFIG
        )
        assert supervisor.children[1].running()
    finally:
        started = time.monotonic()
        supervisor.stop_all(budget_s=5)
        watcher.join(5)
    assert not supervisor.children[1].running() and time.monotonic() - started < 5


def test_children_stop_in_parallel_within_one_budget() -> None:
    """Three children that ignore SIGTERM: all are killed when the one budget ends, not 3 budgets."""
    from rich.console import Console

    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    supervisor = Supervisor(env=dict(os.environ), console=Console(quiet=True))
    for i in range(3):
        supervisor.add(f"stubborn-{i}", [sys.executable, "-c", stubborn])
    supervisor.start_all()
    time.sleep(1)  # let them install their handler
    started = time.monotonic()
    supervisor.stop_all(budget_s=2)
    took = time.monotonic() - started
    assert all(not c.running() for c in supervisor.children)
    assert took < 2 * 2, f"stopping took {took:.1f} s: children were stopped one after another"


def _watching(supervisor: Supervisor) -> threading.Thread:
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    watcher.start()
    return watcher


def _wait_for_new_pid(child, old_pid: int, timeout_s: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if child.process is not None and child.process.pid != old_pid and child.running():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{child.name} was not restarted within {timeout_s} s")


def test_a_child_killed_after_it_was_up_restarts_at_once_however_often() -> None:
    """Repeated SIGKILLs of a child that had been up (OOM killer, kill tests) are not a crash loop: no
    growing back-off (it reached 30 s under `voicechain up` and held killed turns that long)."""
    from rich.console import Console

    supervisor = Supervisor(env=dict(os.environ), console=Console(quiet=True), started_after_s=0.5)
    supervisor.add("worker", [sys.executable, "-c", "import time; time.sleep(600)"])
    supervisor.start_all()
    watcher = _watching(supervisor)
    child = supervisor.children[0]
    try:
        for _ in range(5):
            time.sleep(0.8)  # up longer than started_after_s
            assert child.process is not None
            old = child.process.pid
            child.process.kill()
            assert _wait_for_new_pid(child, old, timeout_s=5) < 2.5  # the first back-off step is 1 s
    finally:
        supervisor.stop_all(budget_s=5)
        watcher.join(5)


def test_one_childs_back_off_does_not_hold_up_another_childs_restart() -> None:
    """A crash-looping child waits out its back-off on its own schedule; a worker killed meanwhile
    restarts at once (the watch loop used to sleep through the back-off for everyone)."""
    from rich.console import Console

    supervisor = Supervisor(env=dict(os.environ), console=Console(quiet=True), started_after_s=0.5)
    supervisor.add("crashing", [sys.executable, "-c", "import sys; sys.exit(1)"])
    supervisor.add("worker", [sys.executable, "-c", "import time; time.sleep(600)"])
    supervisor.start_all()
    watcher = _watching(supervisor)
    crashing, worker = supervisor.children
    try:
        deadline = time.monotonic() + 20
        while crashing.restarts < 3 and time.monotonic() < deadline:  # its next wait is 10 s
            time.sleep(0.1)
        assert crashing.restarts >= 3
        assert worker.process is not None
        old = worker.process.pid
        worker.process.kill()
        assert _wait_for_new_pid(worker, old, timeout_s=5) < 2.5
        assert crashing.restart_at is not None  # still waiting out its own back-off
    finally:
        supervisor.stop_all(budget_s=5)
        watcher.join(5)
