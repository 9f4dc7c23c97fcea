"""PostgreSQL restarted under load (the local server, `pg_ctlcluster ... restart`): no accepted turn is
lost; requests during the outage get 503 with Retry-After, never a 500 or a hang."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.storage.migrate import upgrade
from tests.faults.conftest import report
from tests.faults.harness import FaultStack, submit
from tests.services import postgres_available, scratch_postgres_database, unavailable

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.postgres, pytest.mark.timeout(400)]


def restart_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip


@pytest.fixture
def pg_stack(tmp_path) -> Iterator[FaultStack]:
    if not postgres_available() or shutil.which("pg_ctlcluster") is None:
        unavailable("needs the local PostgreSQL and pg_ctlcluster")
    with scratch_postgres_database() as url:
        upgrade(url)
        stack = FaultStack(tmp_path, url).start()
        try:
            yield stack
        finally:
            stack.stop()


def test_postgres_restarted_mid_load(pg_stack: FaultStack, question: bytes) -> None:
    turns, accepted, refused = 30, [], []

    def submit_all() -> None:
        with pg_stack.client(timeout=30) as client:
            for _ in range(turns):
                started = time.monotonic()
                try:
                    response = submit(client, question, pg_stack.sink.url)
                except httpx.HTTPError as exc:
                    refused.append(type(exc).__name__)
                    continue
                assert time.monotonic() - started < 25, "a request hung through the outage"
                (accepted if response.status_code == 202 else refused).append(response)
                time.sleep(0.15)

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    time.sleep(2.0)
    restart_postgres()
    submitter.join(180)
    five_xx = [r for r in refused if not isinstance(r, str) and r.status_code >= 500 and r.status_code != 503]
    ids = [r.json()["id"] for r in accepted]
    statuses = pg_stack.wait_all_final(ids, timeout_s=240)
    audit = pg_stack.audit(ids)
    lost = len(ids) - statuses["succeeded"]
    duplicates = sum(n - 1 for n in audit["audio_rows"].values() if n > 1)
    report("postgres_restart", turns=len(ids), faults=1, refused=len(refused), lost=lost,
           duplicates=duplicates, five_xx=len(five_xx))  # fmt: skip
    assert not five_xx, [r.text for r in five_xx]
    assert all(r.headers.get("retry-after") for r in refused if not isinstance(r, str)), refused
    assert statuses["succeeded"] == len(ids), statuses
    assert set(audit["audio_rows"].values()) == {1}
