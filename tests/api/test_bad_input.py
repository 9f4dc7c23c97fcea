"""The malformed-audio corpus through both upload routes, and schemathesis over the OpenAPI schema:
4xx for every bad input, no 5xx, the API's memory bounded, the worker alive."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import psutil
import pytest

from tests.conftest import API_KEY, Stack
from tests.pipelines.audio import corpus

pytestmark = pytest.mark.integration

ROUTES = {
    "/v1/jobs": {},
    "/v1/audio/transcriptions": {"model": "whisper-1"},
}


def rss_mb(stack: Stack, name: str) -> float:
    process = next(p for n, p in stack.processes.running if n == name)
    return psutil.Process(process.pid).memory_info().rss / 2**20


@pytest.mark.timeout(300)
def test_malformed_corpus_is_refused_with_4xx_and_bounded_memory(stack: Stack) -> None:
    with stack.client() as client:  # warm up: the first request imports and allocates what it needs
        for path, fields in ROUTES.items():
            client.post(path, files={"file": ("w.wav", corpus.wav(), "audio/wav")}, data=fields)
        before = rss_mb(stack, "api")
        statuses: Counter[int] = Counter()
        for _ in range(3):  # three rounds: a leak grows, a cache does not
            for name, (build, _code, _expected) in corpus.REJECTED.items():
                for path, fields in ROUTES.items():
                    ext = "mp3" if "mp3" in name else "wav"
                    response = client.post(
                        path, files={"file": (f"x.{ext}", build(), "audio/wav")}, data=fields
                    )
                    statuses[response.status_code] += 1
                    assert 400 <= response.status_code < 500, (name, path, response.text)
                    assert response.json()["error"]["code"], (name, path)
        after = rss_mb(stack, "api")
    worker = next(p for n, p in stack.processes.running if n == "worker")
    inputs = sum(statuses.values())
    print(
        f"\nFAULT-FIGURES bad_audio inputs={inputs} statuses={dict(statuses)}",
        f"rss_mb={before:.0f}->{after:.0f}",
    )
    assert worker.poll() is None, "the worker must survive the corpus"
    assert after - before < 150, f"API RSS grew from {before:.0f} MB to {after:.0f} MB"


@pytest.mark.timeout(400)
def test_schemathesis_finds_no_server_errors(stack: Stack, tmp_path) -> None:
    st = shutil.which("st", path=os.path.dirname(sys.executable))
    if st is None:
        pytest.skip("schemathesis is not installed")
    examples = os.environ.get("VOICECHAIN_SCHEMATHESIS_EXAMPLES", "25")
    result = subprocess.run(
        [st, "run", stack.base_url + "/openapi.json", "-H", f"Authorization: Bearer {API_KEY}",
         "--checks", "not_a_server_error", "--max-examples", examples,
         "--request-timeout", "30", "--report", "junit", "--report-dir", str(tmp_path),
         "--generation-deterministic", "--no-color"],
        capture_output=True, text=True, timeout=360,
    )  # fmt: skip
    tried = re.findall(r"(\d+) generated", result.stdout)
    print(f"\nFAULT-FIGURES schemathesis generated={tried[-1] if tried else '?'} rc={result.returncode}")
    assert result.returncode == 0, result.stdout[-6000:]
