"""`voicechain up` never outlives itself and stops on SIGINT, SIGTERM and SIGHUP, as users run it.

Real processes throughout: the embedded Redis, the API, a Celery worker with its prefork child, the
realtime pool with two worker processes of its own (relaying, so they load no models), and Flower. The
process tree is walked (psutil) before the signal, so a grandchild that escaped its session is seen too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from api.cli.stack import STOP_BUDGET_S
from tests.services import free_port, wait_http_ok

pytestmark = [pytest.mark.integration, pytest.mark.models]


class Up:
    """One `voicechain up` on its own ports and data directory, started as a background job would be."""

    def __init__(self, tmp_path: Path, name: str, ports: dict[str, int] | None = None) -> None:
        self.data_dir = tmp_path / "data"
        self.ports = ports or {"api": free_port(), "flower": free_port(), "realtime": free_port()}
        self.log_path = tmp_path / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")}
        env["VOICECHAIN_REALTIME_PORT"] = str(self.ports["realtime"])
        # The pool relays (it connects upstream only when a session opens): its two processes start in
        # seconds instead of loading the models twice, which is not what these tests are about. The
        # Celery worker still loads its models, so a child busy loading is among those that must die.
        env["VOICECHAIN_REALTIME_PROVIDER"] = "openai"
        env["VOICECHAIN_REALTIME_OPENAI_URL"] = "ws://127.0.0.1:9/v1/realtime"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "up", "--data-dir", str(self.data_dir),
             "--port", str(self.ports["api"]), "--flower-port", str(self.ports["flower"]),
             "--realtime-processes", "2"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            # a background job of a non-interactive shell: SIGINT starts ignored
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )  # fmt: skip

    def wait_ready(self) -> None:
        wait_http_ok(f"http://127.0.0.1:{self.ports['api']}/readyz", timeout_s=120)
        wait_listening(self.ports["flower"], timeout_s=60)
        wait_http_ok(f"http://127.0.0.1:{self.ports['realtime']}/healthz", timeout_s=180)

    def tree(self) -> list[psutil.Process]:
        """Every process under `up`, once the Celery prefork child and both pool processes exist."""
        deadline = time.monotonic() + 60
        while True:
            procs = psutil.Process(self.process.pid).children(recursive=True)
            names = [" ".join(p.cmdline()) for p in procs if p.is_running()]
            pool = sum("multiprocessing" in n for n in names)
            celery = sum("celery" in n and " worker" in n for n in names)
            if (pool >= 2 and celery >= 2) or time.monotonic() > deadline:
                return procs
            time.sleep(0.5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


def wait_listening(port: int, timeout_s: float) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


def assert_all_gone(procs: list[psutil.Process], timeout_s: float, log: str) -> None:
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    left = [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in alive if p.is_running()]
    assert not left, f"still running: {left}\n{log}"


def test_a_sigkilled_up_leaves_nothing_and_its_ports_are_free(tmp_path: Path) -> None:
    first = Up(tmp_path, "first")
    try:
        first.wait_ready()
        procs = first.tree()
        commands = [" ".join(p.cmdline()) for p in procs]
        assert any("redis-server" in c for c in commands), commands
        assert len(procs) >= 8, commands  # redis, api, worker + child, pool + 2, flower
        first.process.kill()
        first.process.wait(10)
        assert_all_gone(procs, timeout_s=15, log=first.log())
    finally:
        first.close()
    second = Up(tmp_path, "second", ports=first.ports)  # the same ports and data: it must start
    try:
        second.wait_ready()
        procs = second.tree()
        started = time.monotonic()
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(STOP_BUDGET_S + 15) == 0, second.log()
        print(f"SIGTERM: the stack stopped in {time.monotonic() - started:.1f} s")
        assert_all_gone(procs, timeout_s=5, log=second.log())
    finally:
        second.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_sigint_and_sighup_stop_the_whole_stack(tmp_path: Path, sig: signal.Signals) -> None:
    up = Up(tmp_path, "up")
    try:
        wait_http_ok(f"http://127.0.0.1:{up.ports['api']}/readyz", timeout_s=120)
        wait_listening(up.ports["flower"], timeout_s=60)
        procs = up.tree()
        started = time.monotonic()
        up.process.send_signal(sig)  # SIGINT although it started ignored: `up` installs its handler
        assert up.process.wait(STOP_BUDGET_S + 15) == 0, up.log()
        print(f"{sig.name}: the stack stopped in {time.monotonic() - started:.1f} s")
        assert_all_gone(procs, timeout_s=5, log=up.log())
    finally:
        up.close()
