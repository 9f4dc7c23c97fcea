"""Transcription sessions over a real socket: `?intent=transcription` and `session.type = "transcription"`
give input transcription events and never a response; `conversation.item.retrieve` answers with the item.
Every server event is validated against the GA pydantic types."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import websockets

from pipelines.realtime.protocol import validate_server_event
from tests.pipelines.realtime.fakes import fake_engines, silence_pcm24, tone_pcm24
from tests.workers.realtime.conftest import API_KEY, run
from workers.realtime.auth import mint_client_secret

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
TRANSCRIBE = "{base}/realtime?intent=transcription"
#: What the Agents SDK's streamed STT sends right after `session.created` (openai_stt.py).
SDK_UPDATE = {
    "type": "session.update",
    "session": {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-transcribe"},
                "turn_detection": {"type": "semantic_vad"},
                "noise_reduction": {"type": "near_field"},
            }
        },
    },
}


async def _recv(ws: Any) -> dict[str, Any]:
    data = json.loads(await asyncio.wait_for(ws.recv(), 20))
    validate_server_event(data)
    return data


async def _until(ws: Any, kind: str) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(await _recv(ws))
        if events[-1]["type"] == kind:
            return events


async def _append(ws: Any, pcm: bytes, chunk_ms: int = 40) -> None:
    step = 48 * chunk_ms
    for i in range(0, len(pcm), step):
        chunk = base64.b64encode(pcm[i : i + step]).decode()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))


def test_intent_transcription_transcribes_turns_and_never_responds(serve_app: Any) -> None:
    async def main(base: str) -> None:
        async with websockets.connect(TRANSCRIBE.format(base=base), additional_headers=HEADERS) as ws:
            created = await _recv(ws)
            assert created["type"] == "session.created"
            assert created["session"]["type"] == "transcription"
            await ws.send(json.dumps(SDK_UPDATE))
            updated = await _until(ws, "session.updated")
            session = updated[-1]["session"]
            assert session["type"] == "transcription"
            assert session["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
            assert session["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
            for _ in range(2):  # two turns, each ended by the VAD
                await _append(ws, silence_pcm24(0.2) + tone_pcm24(0.8) + silence_pcm24(1.6))
                events = await _until(ws, "conversation.item.input_audio_transcription.completed")
                kinds = [e["type"] for e in events]
                assert "input_audio_buffer.committed" in kinds
                delta = kinds.index("conversation.item.input_audio_transcription.delta")
                assert delta < len(kinds) - 1
                assert events[-1]["transcript"] == "What is the weather like?"
            # asking for a response is an error, and the session carries on
            await ws.send(json.dumps({"type": "response.create", "event_id": "evt_r1"}))
            error = await _until(ws, "error")
            assert error[-1]["error"]["event_id"] == "evt_r1"
            # the other session type is refused by session.update
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            assert (await _until(ws, "error"))[-1]["error"]["param"] == "session.type"
            # the JS SDK's retrieve after a transcription
            item_id = events[-1]["item_id"]
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": item_id}))
            retrieved = await _until(ws, "conversation.item.retrieved")
            assert retrieved[-1]["item"]["content"][0]["transcript"] == "What is the weather like?"
            # the SDK's end of input: a final commit of (nearly) nothing, then clear
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "evt_final"}))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            tail = await _until(ws, "input_audio_buffer.cleared")
            errors = [e for e in tail if e["type"] == "error"]
            assert all(e["error"]["code"] == "input_audio_buffer_commit_empty" for e in errors)
            assert not any(e["type"].startswith("response.") for e in tail)

    with serve_app(fake_engines()) as served:
        run(main(served.ws_base))


def test_manual_commit_and_unknown_item(serve_app: Any) -> None:
    async def main(base: str) -> None:
        async with websockets.connect(TRANSCRIBE.format(base=base), additional_headers=HEADERS) as ws:
            await _recv(ws)
            update = {
                "type": "session.update",
                "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}},
            }
            await ws.send(json.dumps(update))
            updated = await _until(ws, "session.updated")
            assert updated[-1]["session"]["audio"]["input"]["turn_detection"] is None
            await _append(ws, tone_pcm24(0.6))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            events = await _until(ws, "conversation.item.input_audio_transcription.completed")
            assert "input_audio_buffer.speech_started" not in [e["type"] for e in events]
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": "item_nope"}))
            error = (await _until(ws, "error"))[-1]
            assert error["error"]["code"] == "item_not_found"

    with serve_app(fake_engines()) as served:
        run(main(served.ws_base))


def test_client_secret_for_a_transcription_session(serve_app: Any, redis_server: str, aioredis: Any) -> None:
    """A secret minted with a transcription preset opens a transcription session without `intent`."""

    async def main(base: str) -> None:
        preset = {
            "type": "transcription",
            "audio": {"input": {"transcription": {"model": "whisper-1", "language": "en"}}},
        }
        secret, _ = await mint_client_secret(aioredis, 60, preset)
        subprotocols = ["realtime", "openai-insecure-api-key." + secret]
        async with websockets.connect(f"{base}/realtime", subprotocols=subprotocols) as ws:  # type: ignore[arg-type]
            created = await _recv(ws)
            assert created["session"]["type"] == "transcription"
            transcription = created["session"]["audio"]["input"]["transcription"]
            assert transcription == {"model": "whisper-1", "language": "en"}

    with serve_app(fake_engines(), redis_path=redis_server) as served:
        run(main(served.ws_base))


def test_realtime_session_answers_retrieve(serve_app: Any) -> None:
    async def main(base: str) -> None:
        async with websockets.connect(f"{base}/realtime", additional_headers=HEADERS) as ws:
            await _recv(ws)
            item = {
                "id": "item_u1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hi"}],
            }
            await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await _until(ws, "conversation.item.done")
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": "item_u1"}))
            retrieved = (await _until(ws, "conversation.item.retrieved"))[-1]
            assert retrieved["item"]["content"][0]["text"] == "Hi"

    with serve_app(fake_engines()) as served:
        run(main(served.ws_base))
