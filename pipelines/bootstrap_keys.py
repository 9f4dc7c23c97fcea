"""Bootstrap API keys: from settings, or one generated into the data directory for `voicechain up`.

The HTTP API and the realtime pool both accept them (with every scope); keys made with
`voicechain keys create` live hashed in the database instead (`pipelines.storage.api_keys`).

A key is never stored or logged as-is past this module: requests are attributed to an *owner*, a short
hash of the key, and every job and conversation is scoped to its owner.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from pipelines.settings import Settings

KEY_FILE = "api_key"


def owner_of(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def generated_key_path(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def ensure_generated_key(settings: Settings) -> str:
    """Create the data directory's key once (mode 0600) and return it; later starts reuse it."""
    path = generated_key_path(settings)
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "vc_" + secrets.token_urlsafe(32)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def accepted_keys(settings: Settings) -> list[str]:
    if settings.api_keys:
        return list(settings.api_keys)
    path = generated_key_path(settings)
    return [path.read_text().strip()] if path.is_file() else []


def match(presented: str, keys: list[str]) -> str | None:
    """Constant-time comparison against every key, so timing does not reveal a prefix."""
    found = None
    for key in keys:
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = key
    return found
