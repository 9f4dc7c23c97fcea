"""Brokers for the fault tests: a private RabbitMQ virtual host per test, so parallel test runs sharing the
machine's RabbitMQ (127.0.0.1:5672, guest/guest) never consume each other's `stt`/`agent`/... queues."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass, field

from tests.services import unavailable

RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
BROKERS = ("redis", "rabbitmq")


def rabbitmq_reason() -> str | None:
    """None if the tests can use RabbitMQ here, else why not."""
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    try:
        with socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=1):
            return None
    except OSError:
        return f"RabbitMQ is not listening on {RABBITMQ_HOST}:{RABBITMQ_PORT}"


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@dataclass
class RabbitVhost:
    name: str = field(default_factory=lambda: f"vc_test_{uuid.uuid4().hex[:10]}")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{self.name}"

    def create(self) -> RabbitVhost:
        reason = rabbitmq_reason()
        if reason:
            unavailable(reason)
        _ctl("add_vhost", self.name)
        _ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        subprocess.run(["rabbitmqctl", "delete_vhost", self.name], capture_output=True, timeout=60)
