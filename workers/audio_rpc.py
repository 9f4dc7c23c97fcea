"""Request/reply over Redis for the synchronous audio API (`/v1/audio/*`).

The API stores the input (upload bytes or text) under a key with a TTL, sends a Celery task that carries
only the request id and a few options, and waits on a reply list the worker pushes to. Replies are framed
by one leading byte, so audio chunks travel as raw bytes (no base64):

- `d` + payload: a piece of the answer (encoded audio, or a JSON transcript delta);
- `f` + JSON: the final document; nothing follows;
- `e` + JSON: `{"status", "code", "message"}`; nothing follows.

Keys expire on their own, so a caller that gave up or a worker that died leaves nothing behind for long.
"""

from __future__ import annotations

import json
from typing import Any

INPUT_TTL_S = 300
REPLY_TTL_S = 300

TRANSCRIBE_TASK = "voicechain.audio.transcribe"
SPEAK_TASK = "voicechain.audio.speak"

DATA, FINAL, ERROR = b"d", b"f", b"e"


def input_key(request_id: str) -> str:
    return f"voicechain:audio:{request_id}:input"


def reply_key(request_id: str) -> str:
    return f"voicechain:audio:{request_id}:reply"


def frame(kind: bytes, payload: bytes | dict[str, Any]) -> bytes:
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":")).encode()
    return kind + payload


def error_frame(status: int, code: str, message: str) -> bytes:
    return frame(ERROR, {"status": status, "code": code, "message": message})
