"""FastAPI dependencies as `Annotated` aliases, so a handler reads as a typed signature and auth lives
in one place."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.keys import accepted_keys, match, owner_of
from pipelines.agents.registry import AgentRegistry, load_agents
from pipelines.settings import Settings
from pipelines.storage.artifacts import ArtifactStore
from pipelines.storage.database import get_sessionmaker


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
    owner: str


def authenticate(
    settings: SettingsDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Principal:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(
            401,
            "missing API key: send 'Authorization: Bearer <key>'",
            code="missing_api_key",
            headers=unauthorized,
        )
    key = match(authorization[7:].strip(), accepted_keys(settings))
    if key is None:
        raise ApiError(401, "invalid API key", code="invalid_api_key", headers=unauthorized)
    return Principal(owner=owner_of(key))


PrincipalDep = Annotated[Principal, Depends(authenticate)]
