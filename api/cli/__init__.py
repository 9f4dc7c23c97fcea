"""The `voicechain` command."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from api.cli import embedded_redis
from api.cli.keys import app as keys_app
from api.cli.stack import EXIT_CONFIG, Supervisor, python_module
from api.cli.submit import SubmitError, download_audio, follow, post_job, speak, summary
from pipelines.bootstrap_keys import ensure_generated_key, generated_key_path
from pipelines.settings import QUEUES, Settings, get_settings

app = typer.Typer(help="VoiceChain: distributed voice agents.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
console = Console()


def main() -> None:
    app()


def _settings(**overrides: object) -> Settings:
    """Environment first, then command-line flags that were given."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values) if values else get_settings()


def _export(settings: Settings) -> dict[str, str]:
    """The child processes' configuration, in the same variables a deployment would set."""
    env = dict(os.environ)
    env.update(
        {
            "VOICECHAIN_DATA_DIR": str(settings.data_dir.resolve()),
            "VOICECHAIN_DATABASE_URL": settings.resolved_database_url,
            "VOICECHAIN_REDIS_URL": settings.redis_url or "",
            "VOICECHAIN_BROKER_URL": settings.broker_url or "",  # unset: the Redis above
            "VOICECHAIN_API_KEYS": ",".join(settings.api_keys),
            "VOICECHAIN_WEBHOOK_SECRET": settings.webhook_secret or "",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _data_dir_secret(settings: Settings, name: str) -> str:
    """A secret generated once into the data directory (mode 0600), reused by later starts."""
    path = settings.data_dir / name
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(18) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


@app.command()
def up(
    host: Annotated[
        str | None, typer.Option(help="Interface for every listener (loopback by default).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port.")] = None,
    flower_port: Annotated[int | None, typer.Option(help="Flower port.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Audio, SQLite database, generated keys.")] = None,
    workers: Annotated[int, typer.Option(help="Celery worker processes, each serving every queue.")] = 1,
    realtime_port: Annotated[int | None, typer.Option(help="Realtime WebSocket port.")] = None,
    realtime_processes: Annotated[int, typer.Option(help="Realtime pool processes.")] = 1,
) -> None:
    """Run the whole stack in the foreground: Redis, database, API, workers, realtime pool, Flower.
    Ctrl-C (or SIGTERM, SIGHUP) stops it; its processes never outlive it, even if it is SIGKILLed."""
    settings = _settings(
        host=host, port=port, flower_port=flower_port, data_dir=data_dir, realtime_port=realtime_port
    )
    _require_models(settings)
    supervisor = Supervisor(env={}, console=console)
    supervisor.install_signal_handlers()  # before the first child: a signal from now on stops cleanly
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redis_process = None
    if not settings.redis_url:
        redis_process, url = embedded_redis.start(settings.data_dir / "redis")
        settings = settings.model_copy(update={"redis_url": url})
    try:
        _run_stack(supervisor, settings, workers, realtime_processes)
    finally:
        if redis_process is not None:  # last: the others stop with their broker still there
            embedded_redis.stop(redis_process)
        console.print("stopped.")


def _require_models(settings: Settings) -> None:
    """Say once, before anything starts, which stage cannot load its model and how to install it,
    instead of starting children that crash on it and are restarted forever."""
    from pipelines.providers.preflight import chain_problems, describe, realtime_problems

    problems = {**chain_problems(settings), **realtime_problems(settings)}
    if not problems:
        return
    console.print("[red]voicechain up: these stages cannot load their model:[/red]", highlight=False)
    console.print(describe(problems), highlight=False, soft_wrap=True)
    console.print("Install everything with `make install` (README: Quick start).", highlight=False)
    raise typer.Exit(EXIT_CONFIG)


def _run_stack(supervisor: Supervisor, settings: Settings, workers: int, realtime_processes: int) -> None:
    """Everything after the broker exists; the children are stopped (all at once) however this ends."""
    from pipelines.storage.migrate import upgrade
    from workers import sweeper

    key = None
    if not settings.api_keys:
        key = ensure_generated_key(settings)
        settings = settings.model_copy(update={"api_keys": [key]})
    upgrade(settings.resolved_database_url)
    flower_password = settings.flower_password or _data_dir_secret(settings, "flower_password")
    if not settings.webhook_secret:  # so callback_url works out of the box; receivers read it from here
        secret = _data_dir_secret(settings, "webhook_secret")
        settings = settings.model_copy(update={"webhook_secret": secret})
    env = _export(settings)
    get_settings.cache_clear()
    os.environ.update(env)  # the sweeper thread below reads the same configuration as the children
    supervisor.env = env
    supervisor.add(
        "api",
        python_module(
            "uvicorn",
            "--factory",
            "api.main:create_app",
            "--host",
            settings.host,
            "--port",
            str(settings.port),
            "--log-level",
            "warning",
        ),
        restart=True,
    )
    for i in range(workers):
        supervisor.add(
            f"worker-{i + 1}",
            python_module(
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "-Q",
                ",".join(QUEUES),
                "-c",
                "1",
                "-E",
                "-n",
                f"worker{i + 1}@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ),
        )
    supervisor.add(
        "realtime",
        python_module(
            "api.cli",
            "realtime",
            "--host",
            settings.host,
            "--port",
            str(settings.realtime_port),
            "--processes",
            str(realtime_processes),
        ),
    )
    supervisor.add(
        "flower",
        python_module(
            "celery",
            "-A",
            "workers.celery_app",
            "flower",
            f"--port={settings.flower_port}",
            f"--address={settings.host}",
            f"--basic-auth={settings.flower_user}:{flower_password}",
        ),
    )
    stop_sweeper = threading.Event()
    try:
        supervisor.start_all()
        threading.Thread(target=sweeper.run_forever, args=(settings, stop_sweeper), daemon=True).start()
        _print_endpoints(settings, key, flower_password)
        supervisor.watch()
    except KeyboardInterrupt:  # a signal before the handlers were in place
        pass
    finally:
        console.print("stopping...")
        stop_sweeper.set()
        supervisor.stop_all()


def _print_endpoints(settings: Settings, key: str | None, flower_password: str) -> None:
    table = Table(title="VoiceChain is up", show_header=False)
    base = f"http://{settings.host}:{settings.port}"
    table.add_row("API", base, "OpenAPI at /docs")
    table.add_row(
        "Flower",
        f"http://{settings.host}:{settings.flower_port}",
        f"user {settings.flower_user}, password {flower_password}",
    )
    table.add_row(
        "Realtime",
        f"ws://{settings.host}:{settings.realtime_port}/v1/realtime",
        "OpenAI Realtime GA protocol",
    )
    table.add_row("Redis", settings.redis_url or "", "")
    if settings.broker_url:
        table.add_row("Broker", settings.broker_url.rpartition("@")[2], "")
    table.add_row("Database", settings.resolved_database_url, "")
    table.add_row(
        "API key",
        key or "(from VOICECHAIN_API_KEYS)",
        f"stored in {generated_key_path(settings)}" if key else "",
    )
    console.print(table)
    if key:  # on its own line too: a narrow terminal wraps table cells, and people copy this
        console.print(f"API key: {key}", soft_wrap=True, highlight=False)
    console.print(
        'Try: voicechain submit --say "What is the capital of France?"   (or a recording: voicechain '
        "submit question.wav)",
        highlight=False,
    )


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

    settings = _settings(host=host, port=port)
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
