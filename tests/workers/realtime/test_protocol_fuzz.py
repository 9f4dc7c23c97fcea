"""A WebSocket fuzz of the realtime protocol: every malformed client event gets an `error` event and the
session goes on (a `session.update` afterwards still answers `session.updated`)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import Any

import websockets

from tests.pipelines.realtime.fakes import fake_engines
from tests.workers.realtime.conftest import API_KEY, run
from workers.realtime.app import PoolLimits

FIXED: list[str] = [
    "{not json",
    "[]",
    "null",
    '"a string"',
    json.dumps({"no": "type"}),
    json.dumps({"type": "no.such.event"}),
    json.dumps({"type": 42}),
    json.dumps({"type": "session.update", "session": "not an object"}),
    json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": 7}}),
    json.dumps({"type": "input_audio_buffer.append", "audio": 12345}),
    json.dumps({"type": "input_audio_buffer.append", "audio": "%%% not base64 %%%"}),
    json.dumps({"type": "input_audio_buffer.commit"}),  # out of order: nothing appended yet
    json.dumps(
        {"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0, "audio_end_ms": 5}
    ),
    json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": 5}}),
    json.dumps({"type": "response.cancel", "response_id": ["x"]}),
    json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(2 << 20)).decode()}),
]


def mutated(rng: random.Random, n: int) -> list[str]:
    """Valid-looking events with one field replaced by a value of the wrong type."""
    wrong: list[Any] = [None, 1, -1, 1e308, "x" * 5000, [], {}, True]
    types = ["session.update", "input_audio_buffer.append", "conversation.item.create", "response.create",
             "conversation.item.delete", "input_audio_buffer.clear"]  # fmt: skip
    out = []
    for _ in range(n):
        event = {"type": rng.choice(types), rng.choice(["session", "audio", "item", "item_id", "response"]):
                 rng.choice(wrong)}  # fmt: skip
        out.append(json.dumps(event))
    return out


async def _fuzz(base: str, frames: list[str]) -> tuple[int, int]:
    errors = 0
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with websockets.connect(base + "/realtime?model=x", max_size=None, additional_headers=auth) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        for frame in frames:
            await ws.send(frame)
            seen = []
            while True:  # drain until the error for this frame (or a quiet moment for a valid one)
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
                except TimeoutError:
                    break
                seen.append(event["type"])
                if event["type"] == "error":
                    errors += 1
                    break
        await ws.send(
            json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": "ok"}})
        )
        while (event := json.loads(await asyncio.wait_for(ws.recv(), 5.0)))["type"] != "session.updated":
            pass
    return errors, len(frames)


def test_malformed_events_get_an_error_and_the_session_survives(serve_app: Any) -> None:
    frames = FIXED + mutated(random.Random(7), 60)
    with serve_app(fake_engines(), limits=PoolLimits(max_message_bytes=1 << 20)) as served:
        errors, sent = run(_fuzz(served.ws_base, frames))
    print(f"\nFAULT-FIGURES realtime_fuzz frames={sent} errors={errors}")
    assert errors >= len(FIXED), (errors, sent)
