"""`voicechain submit`: a client of the HTTP API that follows a job through its stages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

from pipelines.settings import STAGES

TERMINAL = {"succeeded", "failed", "cancelled", "awaiting_approval"}


class SubmitError(RuntimeError):
    pass


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:300]
    raise SubmitError(f"HTTP {response.status_code}: {message}")


def post_job(
    client: httpx.Client, audio: Path, *, conversation_id: str | None, agent: str | None
) -> dict[str, Any]:
    fields = {k: v for k, v in {"conversation_id": conversation_id, "agent": agent}.items() if v}
    with audio.open("rb") as handle:
        response = client.post(
            "/v1/jobs", files={"file": (audio.name, handle, "application/octet-stream")}, data=fields
        )
    _raise_for(response)
    return response.json()


def follow(
    client: httpx.Client, job: dict[str, Any], *, timeout_s: float, console: Console | None
) -> dict[str, Any]:
    """Poll the job until it settles, drawing one progress row per stage when a console is given."""
    deadline = time.monotonic() + timeout_s
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<8}"),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[state]}"),
        console=console,
        disable=console is None,
    )
    with progress:
        rows = {s: progress.add_task(s, total=1, state="pending") for s in STAGES}
        while True:
            for stage in job["stages"]:
                done = stage["status"] in ("succeeded", "skipped", "cancelled")
                label = stage["status"] + (
                    f" {stage['duration_ms']:.0f} ms" if done and stage["duration_ms"] else ""
                )
                progress.update(rows[stage["name"]], completed=1 if done else 0, state=label)
            if job["status"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise SubmitError(f"job {job['id']} still {job['status']} after {timeout_s:.0f} s")
            time.sleep(0.2)
            response = client.get(f"/v1/jobs/{job['id']}")
            _raise_for(response)
            job = response.json()


def speak(text: str, path: Path) -> Path:
    """`text` spoken by the bundled piper voice into a WAV at `path`: a question for a machine with no
    recording at hand. piper's random noise is off, so the same text gives the same audio every time."""
    import soundfile

    from pipelines.providers.local_tts import PiperTextToSpeech

    speech = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0).synthesize(text)
    pad = np.zeros(speech.sample_rate * 3 // 10, dtype=np.int16)  # a breath of silence either side
    soundfile.write(path, np.concatenate([pad, speech.samples, pad]), speech.sample_rate, format="WAV")
    return path


def download_audio(client: httpx.Client, job: dict[str, Any], out: Path) -> None:
    response = client.get(f"/v1/jobs/{job['id']}/audio", params={"format": out.suffix.lstrip(".") or "wav"})
    _raise_for(response)
    out.write_bytes(response.content)


def summary(job: dict[str, Any]) -> str:
    return json.dumps(job, indent=2)
