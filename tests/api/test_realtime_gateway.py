"""`WS /v1/realtime` on the API origin, against real API, Celery and realtime pool processes.

The key proof: the official `openai` client given `base_url` alone (no `websocket_base_url`) gets a
spoken reply. Then the refusals (relayed from the pool as JSON errors), the browser subprotocols, and
routing by `?call_id=`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import numpy as np
import pytest
import redis
import soxr
import websockets
from openai import AsyncOpenAI
from websockets.exceptions import InvalidStatus

from pipelines.realtime.protocol import validate_server_event
from tests.conftest import API_KEY

pytestmark = pytest.mark.integration


def _pcm24(samples: np.ndarray, rate: int) -> bytes:
    floats = samples.astype(np.float32) / 32768.0
    out = soxr.resample(floats, rate, 24_000)
    return (np.clip(out, -1, 1) * 32767).astype("<i2").tobytes()


def _ws_url(stack: Any, query: str = "") -> str:
    return stack.base_url.replace("http://", "ws://") + "/v1/realtime" + (f"?{query}" if query else "")


def _live(stack: Any) -> dict[str, int]:
    client = redis.Redis.from_url(stack.settings.redis_url)
    out = {}
    for key in client.scan_iter("voicechain:realtime:worker:*"):
        out[key.decode().split(":", 3)[3]] = int(client.hget(key, "live") or 0)
    return out


def test_openai_client_with_base_url_alone_gets_a_spoken_reply(
    stack: Any, realtime_pool: Any, speech: Any
) -> None:
    samples, rate = speech.samples("What is the capital of France?")
    pcm = _pcm24(samples, rate) + bytes(2 * 24_000)  # one second of silence ends the turn

    async def main() -> list[dict[str, Any]]:
        client = AsyncOpenAI(api_key=API_KEY, base_url=stack.base_url + "/v1")
        events: list[dict[str, Any]] = []
        async with client.realtime.connect(model="voicechain-local") as conn:
            step = 48 * 40  # 40 ms frames, sent at twice real time
            for i in range(0, len(pcm), step):
                await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())
                await asyncio.sleep(0.02)

            async def collect() -> None:
                while True:
                    data = json.loads(await conn.recv_bytes())
                    validate_server_event(data)
                    events.append(data)
                    if data["type"] == "response.done":
                        return

            await asyncio.wait_for(collect(), 60)
        return events

    events = asyncio.run(main())
    kinds = [e["type"] for e in events]
    transcript = next(
        e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    assert "capital" in transcript["transcript"].lower()
    assert kinds.count("response.output_audio.delta") > 3
    assert events[-1]["response"]["status"] == "completed"
    spoken = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert spoken["transcript"].strip()


async def _refusal(url: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, **kw):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body)


def test_refusals_are_relayed_as_openai_errors(stack: Any, realtime_pool: Any) -> None:
    async def main() -> None:
        status, body = await _refusal(_ws_url(stack), additional_headers={"Authorization": "Bearer nope"})
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        status, body = await _refusal(_ws_url(stack))
        assert status == 401 and body["error"]["message"]
        good = {"Authorization": f"Bearer {API_KEY}"}
        status, body = await _refusal(_ws_url(stack, "call_id=rtc_nobody"), additional_headers=good)
        assert status == 404 and body["error"]["code"] == "call_not_found"

    asyncio.run(main())
    time.sleep(0.5)
    assert set(_live(stack).values()) == {0}, "a refused connection must hold no session"


def test_browser_subprotocols_and_single_use_secret(stack: Any, realtime_pool: Any) -> None:
    with stack.client() as http:
        secret = http.post("/v1/realtime/client_secrets", json={}).json()["value"]
    protocols = ["realtime", "openai-insecure-api-key." + secret]

    async def main() -> None:
        async with websockets.connect(_ws_url(stack), subprotocols=protocols) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "realtime"
            created = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert created["type"] == "session.created"
            await ws.send(json.dumps({"type": "input_audio_buffer.clear", "event_id": "evt_1"}))
            cleared = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert cleared["type"] == "input_audio_buffer.cleared"
            assert max(_live(stack).values()) == 1
            await ws.close(4001, "bye")  # an application close code crosses the relay
        status, body = await _refusal(_ws_url(stack), subprotocols=protocols)  # type: ignore[arg-type]
        assert status == 401 and "used" in body["error"]["message"]

    asyncio.run(main())
    deadline = time.monotonic() + 10
    while max(_live(stack).values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(_live(stack).values()) == {0}, "the pool session must end with the client"


def test_pool_close_code_reaches_the_client(stack: Any, realtime_pool: Any) -> None:
    """A frame over the pool's hard size cap: the pool closes with 1009, and so does the relay."""

    async def main() -> None:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with websockets.connect(_ws_url(stack), additional_headers=headers) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (5 << 20)}))
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 20)
            assert ws.close_code == 1009, (ws.close_code, ws.close_reason)

    asyncio.run(main())


def test_call_id_routes_to_the_process_named_by_the_call_key(stack: Any, realtime_pool: Any) -> None:
    """With `?call_id=` the gateway goes to the process the call key names, not the least loaded one."""
    client = redis.Redis.from_url(stack.settings.redis_url)
    headers = {"Authorization": f"Bearer {API_KEY}"}

    async def main() -> None:
        async with websockets.connect(_ws_url(stack), additional_headers=headers) as first:
            await first.recv()
            busy = next(w for w, n in _live(stack).items() if n == 1)  # least loaded routing chose it
            client.set("voicechain:realtime:call:rtc_gatewaytest", busy, ex=30)
            try:
                url = _ws_url(stack, "call_id=rtc_gatewaytest")
                async with websockets.connect(url, additional_headers=headers) as ws:
                    await ws.recv()
                    assert _live(stack)[busy] == 2  # the pool without WebRTC: a plain session there
            except InvalidStatus as refused:  # a pool with WebRTC: that process says it holds no such call
                body = json.loads(refused.response.body)
                assert refused.response.status_code == 404
                assert not body["error"]["message"].startswith("no realtime worker holds")
            finally:
                client.delete("voicechain:realtime:call:rtc_gatewaytest")

    asyncio.run(main())
