"""Short-lived client secrets for the realtime pool, so browsers never hold an API key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import redis.asyncio as aioredis
from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, SettingsDep
from api.errors import ApiError
from workers.celery_app import DEFAULT_BROKER
from workers.realtime.auth import mint_client_secret

router = APIRouter(prefix="/v1/realtime", tags=["realtime"])


class ExpiresAfter(BaseModel):
    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(600, ge=10, le=7200)


class ClientSecretRequest(BaseModel):
    """OpenAI's shape: the `session` preset becomes the session's starting configuration; a
    `conversation_id` in it makes the live session continue that stored conversation."""

    expires_after: ExpiresAfter = Field(default_factory=ExpiresAfter)
    session: dict[str, Any] = Field(default_factory=dict)


class ClientSecret(BaseModel):
    value: str
    expires_at: int
    session: dict[str, Any]


@router.post("/client_secrets", response_model=ClientSecret)
async def create_client_secret(
    settings: SettingsDep,
    principal: PrincipalDep,
    body: Annotated[ClientSecretRequest, Body()] = ClientSecretRequest(),
) -> ClientSecret:
    """A single-use `ek_...` key for one realtime session, valid for `expires_after.seconds`.
    Pass it as `Authorization: Bearer ek_...`, or from a browser as the WebSocket subprotocol
    `openai-insecure-api-key.ek_...` next to `realtime`."""
    client = aioredis.Redis.from_url(settings.redis_url or DEFAULT_BROKER, socket_timeout=5)
    try:
        value, expires_at = await mint_client_secret(
            client, body.expires_after.seconds, body.session, owner=principal.owner
        )
    except (aioredis.ConnectionError, aioredis.TimeoutError) as exc:
        raise ApiError(
            503,
            "the broker is unavailable; try again shortly",
            code="broker_unavailable",
            headers={"Retry-After": "5"},
        ) from exc
    finally:
        await client.aclose()
    return ClientSecret(value=value, expires_at=expires_at, session=body.session)
