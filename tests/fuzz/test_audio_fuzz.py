"""Runs the atheris target over the malformed-audio corpus for a bounded time (VOICECHAIN_FUZZ_SECONDS)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipelines.audio import corpus

pytest.importorskip("atheris")
SECONDS = int(os.environ.get("VOICECHAIN_FUZZ_SECONDS", "60"))


def seed_corpus(directory: Path) -> int:
    builders = {
        name: build for name, (build, _code, _status) in corpus.REJECTED.items() if "bomb" not in name
    }  # fmt: skip  (bombs exceed the target's size cap anyway)
    builders |= {f"good {c} {r}": (lambda c=c, r=r: corpus.good(c, r, 1, 0.5)) for c in corpus.GOOD_FORMATS
                 for r in (8_000, 16_000)}  # fmt: skip
    for i, build in enumerate(builders.values()):
        (directory / f"seed{i:03d}").write_bytes(build()[: 256 * 1024])
    return len(builders)


@pytest.mark.timeout(SECONDS + 120)
def test_audio_validation_survives_coverage_guided_fuzzing(tmp_path: Path) -> None:
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    seed_corpus(seeds)
    target = Path(__file__).with_name("audio_target.py")
    result = subprocess.run(
        [sys.executable, str(target), str(seeds), f"-max_total_time={SECONDS}", "-rss_limit_mb=1024",
         "-timeout=20", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=SECONDS + 90,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    log = result.stdout + result.stderr
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    print(f"\nFAULT-FIGURES atheris inputs={runs.group(1) if runs else '?'} rc={result.returncode}")
    assert result.returncode == 0, log[-4000:]
    assert runs and int(runs.group(1)) > 100, log[-2000:]
