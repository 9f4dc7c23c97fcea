"""The worker over a real socket, driven by the official `openai` realtime client."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
import websockets
from openai import AsyncOpenAI

from pipelines.providers.base import ToolCall
from tests.pipelines.realtime.fakes import fake_engines, silence_pcm24, tone_pcm24
from tests.workers.realtime.conftest import API_KEY, run
from workers.realtime.app import PoolLimits
from workers.realtime.auth import mint_client_secret


async def collect_until(conn: Any, kind: str, timeout: float = 20.0) -> list[Any]:
    events: list[Any] = []

    async def loop() -> None:
        async for ev in conn:
            events.append(ev)
            if ev.type == kind:
                return

    await asyncio.wait_for(loop(), timeout)
    return events


async def stream(conn: Any, pcm: bytes, chunk_ms: int = 20, realtime: bool = False) -> None:
    step = 48 * chunk_ms
    for i in range(0, len(pcm), step):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())
        if realtime:
            await asyncio.sleep(chunk_ms / 1000)


def test_spoken_turn_with_openai_client(serve_app: Any) -> None:
    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="voicechain-local") as conn:
            first = await conn.recv()
            assert first.type == "session.created"
            await stream(conn, silence_pcm24(0.2) + tone_pcm24(0.8) + silence_pcm24(0.8), realtime=True)
            events = await collect_until(conn, "response.done")
        types = [e.type for e in events]
        for kind in (
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "conversation.item.input_audio_transcription.completed",
            "response.output_audio.delta",
        ):
            assert kind in types
        assert events[-1].response.status == "completed"

    with serve_app(fake_engines()) as served:
        run(main(served.ws_base))


def test_manual_mode_and_bad_events_keep_session(serve_app: Any) -> None:
    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            await conn.session.update(
                session={"type": "realtime", "audio": {"input": {"turn_detection": None}}}
            )
            assert (await conn.recv()).type == "session.updated"
            await conn.send_raw("{oops") if hasattr(conn, "send_raw") else await conn._connection.send(
                "{oops"
            )  # type: ignore[attr-defined]
            err = await conn.recv()
            assert err.type == "error" and err.error.code == "invalid_json"
            await conn._connection.send(json.dumps({"type": "nope"}))  # type: ignore[attr-defined]
            assert (await conn.recv()).error.code == "unknown_event"
            await stream(conn, tone_pcm24(0.5))
            await conn.input_audio_buffer.commit()
            await conn.response.create()
            events = await collect_until(conn, "response.done")
            assert events[-1].response.status == "completed"
            assert "input_audio_buffer.committed" in [e.type for e in events]

    with serve_app(fake_engines()) as served:
        run(main(served.ws_base))


def test_barge_in_over_the_wire(serve_app: Any) -> None:
    from pipelines.realtime.session import SessionLimits

    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            await stream(conn, tone_pcm24(0.5) + silence_pcm24(0.7))
            await collect_until(conn, "response.output_audio.delta")
            await asyncio.sleep(0.2)
            await stream(conn, tone_pcm24(0.3), realtime=True)
            events = await collect_until(conn, "response.done")
            done = events[-1]
            assert done.response.status == "cancelled"
            assert done.response.status_details.reason == "turn_detected"
            assert "input_audio_buffer.speech_started" in [e.type for e in events]

    engines = fake_engines(reply=" ".join(["Word"] * 12) + ". " + " ".join(["More"] * 12) + ".")
    with serve_app(engines, limits=PoolLimits(session=SessionLimits(output_lead_ms=200))) as served:
        run(main(served.ws_base))


def test_client_tool_round_trip(serve_app: Any) -> None:
    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            tool = {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {}},
            }
            await conn.session.update(
                session={"type": "realtime", "tools": [tool], "audio": {"input": {"turn_detection": None}}}
            )
            await conn.recv()
            await conn.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Weather?"}],
                }
            )
            await conn.response.create()
            events = await collect_until(conn, "response.done")
            args = next(e for e in events if e.type == "response.function_call_arguments.done")
            assert args.name == "get_weather"
            await conn.conversation.item.create(
                item={"type": "function_call_output", "call_id": args.call_id, "output": "sunny"}
            )
            await conn.response.create()
            events = await collect_until(conn, "response.done")
            assert events[-1].response.output[0].content[0].transcript == "Sunny today."

    engines = fake_engines(reply="Sunny today.")
    engines.chat.tool_call = ToolCall(id="call_9", name="get_weather", arguments="{}")  # type: ignore[attr-defined]
    with serve_app(engines) as served:
        run(main(served.ws_base))


async def _status_of(
    base: str, headers: dict[str, str] | None = None, subprotocols: list[str] | None = None
) -> int:
    try:
        async with websockets.connect(
            base + "/realtime?model=x",
            additional_headers=headers or {},
            subprotocols=subprotocols,  # type: ignore[arg-type]
        ) as ws:
            await ws.recv()
            return 101
    except websockets.exceptions.InvalidStatus as exc:
        return int(exc.response.status_code)


def test_auth_refuses_before_session(serve_app: Any, redis_server: str, aioredis: Any) -> None:
    async def main(base: str) -> None:
        assert await _status_of(base) == 401
        assert await _status_of(base, {"Authorization": "Bearer wrong"}) == 401
        assert await _status_of(base, {"Authorization": "Bearer ek_forged"}) == 401
        secret, _expires = await mint_client_secret(aioredis, 60, {"instructions": "Be brief."})
        assert secret.startswith("ek_")
        # a browser: the secret in a subprotocol, answered with `realtime`
        async with websockets.connect(
            base + "/realtime?model=x",
            subprotocols=["realtime", "openai-insecure-api-key." + secret],  # type: ignore[list-item]
        ) as ws:
            assert ws.subprotocol == "realtime"
            created = json.loads(await ws.recv())
            assert created["session"]["instructions"] == "Be brief."
        assert await _status_of(base, {"Authorization": f"Bearer {secret}"}) == 401  # single use
        short, _ = await mint_client_secret(aioredis, 1)
        await asyncio.sleep(2.1)
        assert await _status_of(base, {"Authorization": f"Bearer {short}"}) == 401  # expired
        fresh, _ = await mint_client_secret(aioredis, 60)
        client = AsyncOpenAI(api_key=fresh, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            assert (await conn.recv()).type == "session.created"

    with serve_app(fake_engines(), redis_path=redis_server) as served:
        run(main(served.ws_base))


def test_full_process_refuses_with_503(serve_app: Any) -> None:
    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            assert await _status_of(base, {"Authorization": f"Bearer {API_KEY}"}) == 503

    with serve_app(fake_engines(), limits=PoolLimits(max_sessions=1)) as served:
        run(main(served.ws_base))


@pytest.mark.parametrize("size", [2 << 20])
def test_oversized_message_is_an_error(serve_app: Any, size: int) -> None:
    async def main(base: str) -> None:
        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base)
        async with client.realtime.connect(model="x") as conn:
            await conn.recv()
            await conn.input_audio_buffer.append(audio=base64.b64encode(bytes(size)).decode())
            err = await conn.recv()
            assert err.type == "error" and err.error.code == "message_too_large"
            await conn.session.update(session={"type": "realtime", "instructions": "still here"})
            assert (await conn.recv()).type == "session.updated"

    with serve_app(fake_engines(), limits=PoolLimits(max_message_bytes=1 << 20)) as served:
        run(main(served.ws_base))
