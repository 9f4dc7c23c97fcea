"""The browser console at `/`: static files, plus the two things the page needs that are not the public API.

Credentials, decided here:
- Jobs view: the user pastes an API key; the page keeps it in sessionStorage (that tab only) and sends it
  as a bearer token to `/v1/jobs`. Nothing is baked into the page.
- Live view: the page holds no key at all. `POST /console/realtime-secret` mints a single-use client
  secret (the realtime pool's `ek_...`, valid for `console_secret_ttl_s`) that the page sends as the
  Bearer of its WebRTC offer (`POST /v1/realtime/calls`) or, on the WebSocket fallback, as a subprotocol.
  Because this route needs no key, it is off unless the operator sets
  `VOICECHAIN_CONSOLE_LIVE_OPEN=true` (a trusted network, or behind an SSO proxy), and it refuses
  cross-origin requests so other sites cannot mint secrets through a visitor's browser.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.deps import SettingsDep
from api.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["console"])


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def _serves(request: Request, path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in request.app.routes)


def _realtime_url(request: Request, port: int) -> str:
    """The API's own `/v1/realtime` when it relays to the pool (one origin for the browser), else the
    pool's port on the host the page was loaded from."""
    scheme = "wss" if request.url.scheme == "https" else "ws"
    if _serves(request, "/v1/realtime"):
        return f"{scheme}://{request.url.netloc}/v1/realtime"
    return f"{scheme}://{request.url.hostname}:{port}/v1/realtime"


@router.get("/console/config", include_in_schema=False)
def console_config(request: Request, settings: SettingsDep) -> dict[str, object]:
    """Where the live view connects (WebRTC calls on this origin; the WebSocket fallback's URL), and
    whether it may mint secrets without a key."""
    return {
        "calls_url": "/v1/realtime/calls",
        "realtime_url": settings.console_realtime_url or _realtime_url(request, settings.realtime_port),
        "live_open": settings.console_live_open,
        "model": "voicechain",
    }


@router.post("/console/realtime-secret", include_in_schema=False)
async def console_realtime_secret(request: Request, settings: SettingsDep) -> dict[str, object]:
    """A short-lived, single-use realtime client secret for the live view (see the module docstring)."""
    if not settings.console_live_open:
        raise ApiError(
            403,
            "the console's live view is disabled; set VOICECHAIN_CONSOLE_LIVE_OPEN=true on a trusted network",
            code="console_live_closed",
        )
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(403, "cross-origin requests may not mint secrets", code="cross_origin")
    from api.routes.audio import _redis
    from workers.realtime.auth import mint_client_secret

    value, expires_at = await mint_client_secret(
        _redis(request), settings.console_secret_ttl_s, None, owner="console"
    )
    return {"value": value, "expires_at": expires_at}
