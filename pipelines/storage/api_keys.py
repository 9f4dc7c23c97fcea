"""API keys kept in the database: created, listed, revoked, and looked up by the hash of the key.

The plaintext key is returned once by `create_key` and never stored. Keys look like `vck_<43 chars>`;
the prefix tells them apart from bootstrap keys and realtime client secrets (`ek_`) in logs and leaks.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.storage.models import ApiKey, utcnow

#: What a key may do: `jobs` (jobs, conversations, reviews), `audio` (/v1/audio/*), `realtime` (the
#: pool), `admin` (operator routes). Bootstrap keys from the environment hold all of them.
SCOPES: tuple[str, ...] = ("jobs", "audio", "realtime", "admin")
KEY_PREFIX = "vck_"


class UnknownScope(ValueError):
    pass


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise UnknownScope(f"unknown or no scope(s) {unknown}; choose from {', '.join(SCOPES)}")
    return wanted


def create_key(
    session: Session,
    *,
    name: str,
    scopes: Iterable[str],
    rate_limit_per_minute: int | None = None,
    max_realtime_sessions: int | None = None,
) -> tuple[ApiKey, str]:
    """Insert a key; returns (row, plaintext). The plaintext cannot be recovered later."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        hash=hash_key(plaintext),
        scopes=check_scopes(scopes),
        rate_limit_per_minute=rate_limit_per_minute,
        max_realtime_sessions=max_realtime_sessions,
    )
    session.add(row)
    session.flush()
    return row, plaintext


def find_active(session: Session, plaintext: str) -> ApiKey | None:
    """The unrevoked key with this value, or None. The hash is compared by the index, not in Python:
    an attacker learns nothing from timing that would bring them closer to a 256-bit random value."""
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.hash == hash_key(plaintext)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all())


def revoke_key(session: Session, key_id: str) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
