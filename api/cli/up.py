"""`voicechain up`: the whole stack in the foreground, as one supervisor of child processes.

The embedded Redis (unless `VOICECHAIN_REDIS_URL` is set), the API, the Celery workers, the realtime
pool and Flower run as children of this process (`api.cli.stack.Supervisor`: they die with it, stop in
parallel, and are restarted when they should be); the sweeper runs as a thread. The other commands, in
`api.cli`, each run one part of this on its own.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli import embedded_redis
from api.cli.common import console, settings_from
from api.cli.stack import EXIT_CONFIG, Supervisor, python_module
from pipelines.bootstrap_keys import ensure_generated_key, generated_key_path
from pipelines.settings import QUEUES, Settings, get_settings


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
    settings = settings_from(
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
