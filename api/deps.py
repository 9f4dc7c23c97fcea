"""FastAPI dependencies as `Annotated` aliases, so a handler reads as a typed signature and auth lives
in one place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from api.errors import ApiError
from pipelines.agents.registry import AgentRegistry, load_agents
from pipelines.bootstrap_keys import accepted_keys, match, owner_of
from pipelines.quotas import RateLimiter
from pipelines.settings import Settings
from pipelines.storage.api_keys import KEY_PREFIX, SCOPES, find_active
from pipelines.storage.artifacts import ArtifactStore
from pipelines.storage.database import get_sessionmaker, session_scope
from workers.celery_app import DEFAULT_BROKER


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = get_sessionmaker(settings.resolved_database_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_store(settings: SettingsDep) -> ArtifactStore:
    return ArtifactStore(settings.artifacts_dir)


StoreDep = Annotated[ArtifactStore, Depends(get_store)]


def get_agents(request: Request) -> AgentRegistry:
    """Loaded on first use and kept on the app: importing the agents module is not free."""
    registry = getattr(request.app.state, "agents", None)
    if registry is None:
        settings: Settings = request.app.state.settings
        registry = request.app.state.agents = load_agents(settings.agents, default=settings.default_agent)
    return registry


AgentsDep = Annotated[AgentRegistry, Depends(get_agents)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the owner of what they create or read, what they may do, and their key's id."""

    owner: str
    scopes: frozenset[str] = frozenset(SCOPES)
    key_id: str | None = None  # a database key; None for a bootstrap key


#: Path prefix -> the scope its routes need. A path under none of them needs `admin`: a new route is
#: closed to limited keys until someone decides which scope it belongs to.
ROUTE_SCOPES: tuple[tuple[str, str], ...] = (
    ("/v1/jobs", "jobs"),
    ("/v1/conversations", "jobs"),
    ("/v1/audio", "audio"),
    ("/v1/realtime", "realtime"),
)


def required_scope(path: str) -> str:
    for prefix, scope in ROUTE_SCOPES:
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return "admin"


def _limiter(request: Request, settings: Settings) -> RateLimiter:
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        limiter = request.app.state.rate_limiter = RateLimiter(settings.redis_url or DEFAULT_BROKER)
    return limiter


def _identify(settings: Settings, token: str) -> tuple[Principal, int]:
    """(principal, requests a minute) for a valid token; ApiError 401 otherwise."""
    key = match(token, accepted_keys(settings))
    if key is not None:  # bootstrap keys (environment, or the one `up` generated) hold every scope
        return Principal(owner=owner_of(key)), settings.bootstrap_rate_limit_per_minute
    if token.startswith(KEY_PREFIX):
        with session_scope(settings.resolved_database_url) as session:
            row = find_active(session, token)
            if row is not None:
                limit = row.rate_limit_per_minute
                return (
                    Principal(owner=row.id, scopes=frozenset(row.scopes), key_id=row.id),
                    settings.key_rate_limit_per_minute if limit is None else limit,
                )
    raise ApiError(401, "invalid API key", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """Key -> principal, then the route's scope, then the key's rate limit (401, 403, 429 in that order)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(
            401,
            "missing API key: send 'Authorization: Bearer <key>'",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal, limit = _identify(settings, authorization[7:].strip())
    scope = required_scope(request.url.path)
    if scope not in principal.scopes:
        raise ApiError(403, f"this API key lacks the {scope!r} scope", code="insufficient_scope")
    verdict = _limiter(request, settings).hit(principal.owner, limit)
    if not verdict.allowed:
        raise ApiError(
            429,
            f"rate limit of {limit} requests a minute exceeded for this key",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(verdict.retry_after_s)},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
