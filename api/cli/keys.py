"""`voicechain keys create|list|revoke`: API keys in the database (only their hashes are stored)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.settings import get_settings
from pipelines.storage.api_keys import SCOPES, UnknownScope, create_key, list_keys, revoke_key
from pipelines.storage.database import session_scope

app = typer.Typer(help="API keys stored hashed in the database.", no_args_is_help=True)
console = Console()


def _url() -> str:
    from pipelines.storage.migrate import upgrade

    url = get_settings().resolved_database_url
    upgrade(url)  # idempotent: a fresh data directory gets its tables before the first key
    return url


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scopes: Annotated[str, typer.Option(help=f"Comma separated, from {', '.join(SCOPES)}.")] = "jobs",
    rate_limit: Annotated[
        int | None, typer.Option(help="Requests a minute; unset: VOICECHAIN_KEY_RATE_LIMIT_PER_MINUTE.")
    ] = None,
    max_sessions: Annotated[
        int | None, typer.Option(help="Realtime sessions at once; unset: the deployment default.")
    ] = None,
) -> None:
    """Create a key and print it once; it cannot be shown again."""
    try:
        with session_scope(_url()) as session:
            row, plaintext = create_key(
                session,
                name=name,
                scopes=scopes.split(","),
                rate_limit_per_minute=rate_limit,
                max_realtime_sessions=max_sessions,
            )
            key_id, granted = row.id, row.scopes
    except UnknownScope as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from exc
    console.print(f"created {key_id} ({name}) with scopes {','.join(granted)}", highlight=False)
    console.print("the key (shown once, store it now):", highlight=False)
    print(plaintext)


@app.command("list")
def list_(
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Every key: id, name, scopes, limits, created and revoked dates (never the key itself)."""
    table = Table("id", "name", "scopes", "req/min", "sessions", "created", "revoked")
    table.columns[0].no_wrap = True
    with session_scope(_url()) as session:
        for row in list_keys(session):
            if json_output:
                print(json.dumps({
                    "id": row.id, "name": row.name, "scopes": row.scopes,
                    "rate_limit_per_minute": row.rate_limit_per_minute,
                    "max_realtime_sessions": row.max_realtime_sessions,
                    "created_at": row.created_at.isoformat(),
                    "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                }))  # fmt: skip
                continue
            table.add_row(
                row.id, row.name, ",".join(row.scopes),
                str(row.rate_limit_per_minute or "default"), str(row.max_realtime_sessions or "default"),
                row.created_at.strftime("%Y-%m-%d %H:%M"),
                row.revoked_at.strftime("%Y-%m-%d %H:%M") if row.revoked_at else "",
            )  # fmt: skip
    if not json_output:
        console.print(table)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (ak_...), from `keys list`.")]) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    with session_scope(_url()) as session:
        row = revoke_key(session, key_id)
    if row is None:
        console.print(f"[red]no key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}", highlight=False)
