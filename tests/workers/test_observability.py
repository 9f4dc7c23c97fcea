"""Metrics, JSON logs and traces of a real job: API and a prefork worker (2 children) as processes.

One job goes through the chain; then the worker's metrics port shows stage durations recorded by its
pool children, the API's `/metrics` shows queue depths and open jobs, every JSON log line of the job
carries its job id, and an OTLP/HTTP collector run by the test receives one trace with the API request
and every stage.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from pipelines.settings import STAGES, Settings
from pipelines.storage.migrate import upgrade
from tests.conftest import API_KEY, settings_env
from tests.services import Processes, RedisServer, api_command, free_port, wait_http_ok, worker_command
from tests.workers.test_chain import submit, wait_done

pytestmark = [pytest.mark.integration, pytest.mark.models]


class Collector(ThreadingHTTPServer):
    """A minimal OTLP/HTTP trace receiver: keeps (trace_id, span name, service) of every span."""

    spans: list[tuple[str, str, str]]


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.server.spans.append((span.trace_id.hex(), span.name, service))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    pytest.importorskip("opentelemetry.sdk", reason="tracing needs the [otel] extra")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="tracing needs the [otel] extra")
    server = Collector(("127.0.0.1", free_port()), _Handler)
    server.spans = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def observed(stack_settings: Settings, collector: Collector, tmp_path_factory) -> Iterator[dict]:
    # its own Redis and database: the session `stack` worker must not take this job's stages
    redis = RedisServer(port=free_port(), data_dir=tmp_path_factory.mktemp("observed-redis"))
    redis.start()
    database_url = f"sqlite:///{tmp_path_factory.mktemp('observed-db') / 'voicechain.db'}"
    upgrade(database_url)
    settings = stack_settings.model_copy(update={"redis_url": redis.url, "database_url": database_url})
    processes = Processes(log_dir=tmp_path_factory.mktemp("observed-logs"))
    env = settings_env(settings) | {
        "VOICECHAIN_LOG_FORMAT": "json",
        "VOICECHAIN_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
        "VOICECHAIN_METRICS_ADDR": "127.0.0.1",
    }
    api_port, metrics_port = free_port(), free_port()
    processes.start("api", api_command(api_port), env)
    processes.start(
        "worker",
        worker_command(",".join(STAGES), "observed@test", concurrency=2),
        env | {"VOICECHAIN_WORKER_METRICS_PORT": str(metrics_port)},
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{api_port}/readyz")
        wait_http_ok(f"http://127.0.0.1:{metrics_port}/metrics", timeout_s=90)
        yield {"api": f"http://127.0.0.1:{api_port}", "metrics": f"http://127.0.0.1:{metrics_port}",
               "processes": processes}  # fmt: skip
    finally:
        processes.stop_all()
        redis.stop()


@pytest.fixture(scope="module")
def job(observed: dict, speech) -> dict:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=observed["api"], headers=headers, timeout=30) as client:
        done = wait_done(client, submit(client, speech.wav("What is the capital of France?"))["id"])
    assert done["status"] == "succeeded", done
    return done


def test_worker_port_merges_its_pool_children(observed: dict, job: dict) -> None:
    text = httpx.get(observed["metrics"] + "/metrics", timeout=5).text
    assert 'voicechain_stage_seconds_count{outcome="ok",provider=' in text
    for stage in STAGES:
        assert any(
            line.startswith("voicechain_stage_seconds_count") and f'stage="{stage}"' in line
            for line in text.splitlines()
        ), stage
    assert 'voicechain_jobs_finished_total{status="succeeded"}' in text
    assert "voicechain_provider_seconds_count" in text


def test_api_metrics_show_queue_depths_and_open_jobs(observed: dict, job: dict) -> None:
    response = httpx.get(observed["api"] + "/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for queue in STAGES:
        assert f'voicechain_queue_depth{{queue="{queue}"}} 0.0' in text
    assert "voicechain_broker_up 1.0" in text
    assert 'voicechain_jobs{status="queued"}' in text


def _json_lines(log: str) -> list[dict]:
    out = []
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def test_json_logs_carry_the_job_from_api_to_every_stage(observed: dict, job: dict) -> None:
    processes: Processes = observed["processes"]
    api_lines = [e for e in _json_lines(processes.log("api")) if e.get("job_id") == job["id"]]
    assert any(e["message"].startswith("published voicechain.stage.stt") for e in api_lines), api_lines
    worker_lines = [e for e in _json_lines(processes.log("worker")) if e.get("job_id") == job["id"]]
    stages_logged = {e.get("stage") for e in worker_lines}
    assert set(STAGES) <= stages_logged, stages_logged
    assert all(e.get("conversation_id") == job["conversation_id"] for e in worker_lines if "stage" in e and
               e["message"].startswith("stage "))  # fmt: skip


def test_one_trace_spans_the_api_and_every_stage(observed: dict, job: dict, collector: Collector) -> None:
    import time

    deadline = time.monotonic() + 15
    wanted = {"POST /v1/jobs", *(f"stage {s}" for s in STAGES)}
    while time.monotonic() < deadline:
        by_trace: dict[str, set[str]] = {}
        for trace_id, name, _service in collector.spans:
            by_trace.setdefault(trace_id, set()).add(name)
        if any(wanted <= names for names in by_trace.values()):
            break
        time.sleep(0.3)
    assert any(wanted <= names for names in by_trace.values()), by_trace
    services = {service for _t, name, service in collector.spans if name in wanted}
    assert services == {"voicechain-api", "voicechain-worker"}
