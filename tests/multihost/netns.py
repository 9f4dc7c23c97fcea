"""Throwaway "hosts" made of Linux network namespaces on one bridge, for the multi-host test.

Layout: a hub namespace holds a bridge; each host namespace gets a veth whose peer is enslaved to that
bridge, an address in the test's own subnet and its own loopback. Nothing touches the root namespace's
interfaces or routes, so traffic stays inside these namespaces. All hosts share the filesystem (the
artifact directory is "shared storage" by construction, like an NFS/RWX volume in production).

The test process reaches a host by moving one thread into its namespace (`setns` is per thread).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SUBNET = "10.213.0"


def ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=10)


def can_make_namespaces() -> str | None:
    """None if namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    probe = f"vcprobe{os.getpid()}"
    try:
        ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.strip()}"
    ip("netns", "del", probe)
    return None


@dataclass
class Network:
    """A bridge namespace plus named hosts; `address(host)` is the host's IP on the bridge."""

    tag: str = field(default_factory=lambda: f"vc{os.getpid() % 100000}")
    hosts: dict[str, int] = field(default_factory=dict)
    _threads: dict[str, ThreadPoolExecutor] = field(default_factory=dict)

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    def netns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def address(self, host: str) -> str:
        return f"{SUBNET}.{self.hosts[host]}"

    def create_hub(self) -> None:
        ip("netns", "add", self.hub)
        ip("link", "add", "br0", "type", "bridge", netns=self.hub)
        ip("link", "set", "br0", "up", netns=self.hub)

    def add_host(self, host: str) -> str:
        number = len(self.hosts) + 1
        self.hosts[host] = number
        ns, peer = self.netns(host), f"p{number}"
        ip("netns", "add", ns)
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer, "netns", self.hub)
        ip("link", "set", peer, "master", "br0", netns=self.hub)
        ip("link", "set", peer, "up", netns=self.hub)
        ip("addr", "add", f"{self.address(host)}/24", "dev", "eth0", netns=ns)
        ip("link", "set", "eth0", "up", netns=ns)
        ip("link", "set", "lo", "up", netns=ns)
        return self.address(host)

    def cut(self, host: str) -> None:
        """Pull the host's cable: its processes live on but nothing reaches or leaves it."""
        ip("link", "set", "eth0", "down", netns=self.netns(host))

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns(host)]

    def call_in(self, host: str, fn: Callable[[], T]) -> T:
        """Run `fn` on a thread that lives in `host`'s namespace (sockets it opens stay there)."""
        if host not in self._threads:
            path = f"/var/run/netns/{self.netns(host)}"
            self._threads[host] = ThreadPoolExecutor(1, initializer=_enter, initargs=(path,))
        return self._threads[host].submit(fn).result()

    def destroy(self) -> None:
        for pool in self._threads.values():
            pool.shutdown(wait=False, cancel_futures=True)
        for host in list(self.hosts):
            subprocess.run(["ip", "netns", "del", self.netns(host)], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.hub], capture_output=True, timeout=10)


def _enter(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


class Namespace:
    """A network namespace with only loopback (plus 127.0.0.2, since aioice gathers no 127.0.0.1
    candidates) and a thread living inside it: where WebRTC tests run server, client and browser."""

    def __init__(self, prefix: str = "vcrtc") -> None:
        self.name = f"{prefix}{os.getpid() % 100000}"
        ip("netns", "add", self.name)
        ip("link", "set", "lo", "up", netns=self.name)
        ip("addr", "add", "127.0.0.2/8", "dev", "lo", netns=self.name)
        self._thread = ThreadPoolExecutor(1, initializer=_enter, initargs=(f"/var/run/netns/{self.name}",))

    def run(self, fn: Callable[[], T]) -> T:
        return self._thread.submit(fn).result()

    def arun(self, coro_fn: Callable[[], Any]) -> Any:
        """Run an async scenario on a fresh event loop inside the namespace (its sockets stay there)."""
        return self.run(lambda: asyncio.run(coro_fn()))

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def destroy(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
