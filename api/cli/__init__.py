"""The `voicechain` command: `up` (the whole stack under one supervisor, `api.cli.up`), and the commands
that run one part of it each (`worker`, `api`, `realtime`, `sweeper`), `db`, `keys` and `submit`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import httpx
import typer

from api.cli.common import console, settings_from
from api.cli.keys import app as keys_app
from api.cli.submit import SubmitError, download_audio, follow, post_job, speak, summary
from api.cli.up import up
from pipelines.bootstrap_keys import generated_key_path
from pipelines.settings import QUEUES, get_settings

app = typer.Typer(help="VoiceChain: distributed voice agents.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.command()(up)  # the supervisor of the whole stack: api.cli.up


def main() -> None:
    app()


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = ",".join(QUEUES),
    concurrency: Annotated[int, typer.Option(help="Processes; each loads its own models.")] = 1,
    name: Annotated[str | None, typer.Option(help="Celery node name.")] = None,
    loglevel: str = "INFO",
) -> None:
    """Run a Celery worker for some stages, e.g. `--queues stt` on a machine with the hardware for it."""
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(wanted) - set(QUEUES))
    if unknown or not wanted:
        raise typer.BadParameter(f"unknown queue(s) {unknown}; choose from {', '.join(QUEUES)}")
    os.environ["VOICECHAIN_WORKER_QUEUES"] = ",".join(wanted)
    get_settings.cache_clear()
    from workers.celery_app import app as celery_app

    argv = ["worker", "-Q", ",".join(wanted), "-c", str(concurrency), "-E", f"--loglevel={loglevel}"]
    celery_app.worker_main([*argv, *(["-n", name] if name else [])])


@app.command()
def api(host: str | None = None, port: int | None = None) -> None:
    """Run only the HTTP API."""
    import uvicorn

    settings = settings_from(host=host, port=port)
    uvicorn.run("api.main:create_app", factory=True, host=settings.host, port=settings.port)


@app.command()
def realtime(
    processes: Annotated[int, typer.Option(help="Worker processes sharing the port (SO_REUSEPORT).")] = 1,
    host: Annotated[str | None, typer.Option(help="Interface (loopback by default).")] = None,
    port: Annotated[int | None, typer.Option(help="WebSocket port (default 8001).")] = None,
    max_sessions: Annotated[int, typer.Option(help="Live sessions per process before 503.")] = 8,
) -> None:
    """Run the realtime pool: `WS /v1/realtime`, the OpenAI Realtime GA protocol. SIGTERM drains."""
    from pipelines.storage.migrate import upgrade
    from workers.realtime.app import PoolLimits
    from workers.realtime.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    upgrade(settings.resolved_database_url)  # sessions write the conversation as they go
    serve(settings, processes, host, port, PoolLimits(max_sessions=max_sessions))


@app.command("sweeper")
def run_sweeper() -> None:
    """Re-send turns whose queue message was lost (run one per deployment; replicas take a lock)."""
    from workers import sweeper

    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sweeper.run_forever(get_settings(), stop)
    except KeyboardInterrupt:
        stop.set()


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to the configured database."""
    from pipelines.storage.migrate import upgrade

    upgrade(get_settings().resolved_database_url, revision)
    console.print("database at", revision)


@app.command()
def submit(
    audio: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="WAV, FLAC, OGG or MP3.")
    ] = None,
    say: Annotated[
        str | None,
        typer.Option(help="No audio file? Speak this question with the local voice and send that."),
    ] = None,
    url: Annotated[str, typer.Option(envvar="VOICECHAIN_URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option(envvar="VOICECHAIN_API_KEY", help="Default: the key `up` made.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the spoken answer (.wav/.flac/.ogg).")
    ] = None,
    conversation: Annotated[str | None, typer.Option(help="Continue this conversation.")] = None,
    agent: Annotated[str | None, typer.Option(help="Agent name.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the job document as JSON.")] = False,
    timeout: float = 300.0,
) -> None:
    """Send one spoken turn and follow it through stt, agent, policy and tts.

    `voicechain submit --say "What is the capital of France?"` needs no audio file: the question is
    spoken here by the bundled piper voice and sent as a WAV, like a recording would be."""
    if (audio is None) == (say is None):
        raise typer.BadParameter("give an audio file or --say TEXT (one of the two)")
    key = api_key or _local_key()
    with tempfile.TemporaryDirectory(prefix="voicechain-say-") as scratch:
        if say is not None:
            audio = speak(say, Path(scratch) / "question.wav")
            out = out or Path("reply.wav")
        assert audio is not None
        out = out or audio.with_name(audio.stem + ".reply.wav")
        job = _submit(url, key, audio, out, conversation, agent, timeout, quiet=json_output)
    if json_output:
        print(summary(job))
    else:
        _print_result(job, out)
    if job["status"] != "succeeded":
        raise typer.Exit(1)


def _submit(
    url: str, key: str, audio: Path, out: Path, conversation: str | None, agent: str | None,
    timeout: float, *, quiet: bool,
) -> dict:  # fmt: skip
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        try:
            job = post_job(client, audio, conversation_id=conversation, agent=agent)
            job = follow(client, job, timeout_s=timeout, console=None if quiet else console)
            if job["status"] == "succeeded":
                download_audio(client, job, out)
        except (SubmitError, httpx.HTTPError) as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    return job


def _local_key() -> str:
    path = generated_key_path(get_settings())
    if path.is_file():
        return path.read_text().strip()
    console.print("[red]no API key: pass --api-key or set VOICECHAIN_API_KEY[/red]")
    raise typer.Exit(2)


def _print_result(job: dict, out: Path) -> None:
    console.print(f"[bold]heard[/bold]   {job['transcript']!r}")
    console.print(f"[bold]reply[/bold]   {job['reply_text']!r}")
    console.print(f"[bold]policy[/bold]  {job['policy']['verdict']} {job['policy']['reasons'] or ''}")
    if job["status"] == "succeeded":
        console.print(f"[bold]spoken[/bold]  {job['spoken_text']!r} -> {out}")
    else:
        console.print(f"[red]{job['status']}: {job.get('error')}[/red]")
    console.print(f"job {job['id']}  conversation {job['conversation_id']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
