"""WebRTC calls against a real pool process (`voicechain realtime`, local models), with a real aiortc
peer as the client, espeak-ng speech in, and the media on loopback only.

aioice never gathers 127.0.0.1, so server and client run inside a network namespace that has only `lo`,
with 127.0.0.2/8 added to it: the only candidates either side can have are loopback ones, and no packet
can leave the namespace. Needs root for the namespace; skips without (fails under CI).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from api.cli.embedded_redis import redis_server_binary
from pipelines.realtime.protocol import validate_server_event
from tests.multihost.netns import Namespace, can_make_namespaces
from tests.services import unavailable
from tests.workers.realtime.webrtc_peer import MIC_RATE, Peer

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.timeout(300)]
KEY = "vc_webrtc_test_key_0123456789"
POOL = "http://127.0.0.1:8001"
CALLS = POOL + "/v1/realtime/calls"
REDIS_URL = "redis://127.0.0.1:6379/0"


def espeak(text: str) -> np.ndarray:
    """`text` spoken by espeak-ng (a voice the models were not tuned on), as 48 kHz PCM16."""
    import soundfile
    import soxr

    if shutil.which("espeak-ng") is None:
        unavailable("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", wav.name, text], check=True)
        samples, rate = soundfile.read(wav.name, dtype="float32")
    audio = soxr.resample(samples, rate, MIC_RATE) * 0.8
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(MIC_RATE * seconds), dtype=np.int16)


class Stack:
    """Redis and one pool process (max 2 sessions) inside the namespace."""

    def __init__(self, ns: Namespace, tmp: Path) -> None:
        self.ns, self.tmp = ns, tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.procs.append(subprocess.Popen(
            [*self.ns.exec_prefix(), redis_server_binary(), "--bind", "127.0.0.1", "--port", "6379",
             "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECHAIN_")} | {
            "VOICECHAIN_DATA_DIR": str(self.tmp), "VOICECHAIN_REDIS_URL": REDIS_URL,
            "VOICECHAIN_API_KEYS": KEY, "VOICECHAIN_DATABASE_URL": f"sqlite:///{self.tmp / 'rt.db'}",
            "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        }  # fmt: skip
        self.log = self.tmp / "pool.log"
        self.procs.append(subprocess.Popen(
            [*self.ns.exec_prefix(), sys.executable, "-m", "api.cli", "realtime", "--port", "8001",
             "--max-sessions", "2"],
            env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        deadline = time.monotonic() + 120
        while self.ns.run(_health) is None:
            if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                raise RuntimeError("pool did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.3)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def _health() -> dict[str, Any] | None:
    try:
        return httpx.get(POOL + "/healthz", timeout=2, trust_env=False).json()
    except httpx.HTTPError:
        return None


@pytest.fixture(scope="module")
def ns() -> Iterator[Namespace]:
    reason = can_make_namespaces()
    if reason:
        unavailable(f"WebRTC tests need a network namespace: {reason}")
    space = Namespace()
    try:
        yield space
    finally:
        space.destroy()


@pytest.fixture(scope="module")
def stack(ns: Namespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(ns, tmp_path_factory.mktemp("webrtc"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


async def live_sessions() -> int:
    async with httpx.AsyncClient(trust_env=False) as client:
        return int((await client.get(POOL + "/healthz")).json()["live"])


async def wait_live(expected: int, timeout: float) -> float:
    """Seconds until the pool reports `expected` live sessions (raises after `timeout`)."""
    started = time.monotonic()
    while (live := await live_sessions()) != expected:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{live} live sessions after {timeout} s, expected {expected}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def call_keys() -> list[bytes]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return [k async for k in client.scan_iter(match="voicechain:realtime:call:*")]
    finally:
        await client.aclose()


async def mint(ttl_s: int = 60) -> str:
    import redis.asyncio as aioredis

    from workers.realtime.auth import mint_client_secret

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        value, _ = await mint_client_secret(client, ttl_s, {}, owner="webrtc-test")
        return value
    finally:
        await client.aclose()


async def connected(peer: Peer, token: str = KEY, **kw: Any) -> None:
    response = await peer.call(CALLS, token, **kw)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/sdp")
    assert (peer.location or "").startswith("/v1/realtime/calls/rtc_")
    await asyncio.wait_for(peer.opened.wait(), 15)
    await peer.wait_for("session.created", 15)


def test_spoken_turn_is_answered_on_the_track_with_events_on_the_data_channel(
    ns: Namespace, stack: Stack
) -> None:
    question = espeak("What is the capital of France?")

    async def scenario() -> None:
        peer = Peer()
        try:
            await connected(peer, await mint())
            peer.send({"type": "session.update", "session": {
                "type": "realtime", "instructions": "Answer in one short sentence.",
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}},
            }})  # fmt: skip
            await peer.wait_for("session.updated")
            peer.mic.say(np.concatenate([silence(0.5), question, silence(1.5)]))
            await peer.wait_for("input_audio_buffer.speech_stopped", 30)
            spoken_end = peer.mic.last_speech_at
            started = await peer.wait_for("output_audio_buffer.started", 30)
            done = await peer.wait_for("response.done", 60)
            stopped = await peer.wait_for("output_audio_buffer.stopped", 30)
            assert started["response_id"] == done["response"]["id"] == stopped["response_id"]
            assert done["response"]["status"] == "completed"
            user = next(ev for _, ev in peer.events if ev["type"] == "conversation.item.done"
                        and ev["item"]["role"] == "user")  # fmt: skip
            assert "capital" in user["item"]["content"][0]["transcript"].lower(), user
            first_heard = peer.heard.first_speech_after(spoken_end)
            assert first_heard is not None, "no speech arrived on the audio track"
            heard_ms = peer.heard.speech_ms_between(first_heard, time.monotonic())
            assert heard_ms > 300, f"only {heard_ms} ms of reply audio heard"
            assert "response.output_audio.delta" not in peer.types(), "audio travels on the track"
            for _, ev in peer.events:
                validate_server_event(ev)
        finally:
            await peer.close()
        await wait_live(0, 10)

    ns.arun(scenario)


def test_barge_in_cuts_the_track_and_keeps_only_what_was_played(ns: Namespace, stack: Stack) -> None:
    question = espeak("Tell me the whole history of the Roman empire, please.")
    interruption = espeak("Wait, stop please.")

    async def scenario() -> None:
        peer = Peer()
        try:
            await connected(peer)
            peer.send({"type": "session.update", "session": {
                "type": "realtime", "instructions": "Answer in five long sentences about history.",
            }})  # fmt: skip
            await peer.wait_for("session.updated")
            peer.mic.say(np.concatenate([silence(0.5), question, silence(1.2)]))
            started = await peer.wait_for("output_audio_buffer.started", 40)
            started_at = peer.at("output_audio_buffer.started")
            assert started_at is not None
            await asyncio.sleep(1.5)  # let part of the answer play
            peer.mic.say(np.concatenate([interruption, silence(1.0)]))
            cleared = await peer.wait_for("output_audio_buffer.cleared", 20)
            cleared_at = peer.at("output_audio_buffer.cleared")
            assert cleared["response_id"] == started["response_id"]
            truncated = await peer.wait_for("conversation.item.truncated", 10)
            first_heard = peer.heard.first_speech_after(started_at - 0.2)
            assert first_heard is not None and first_heard < cleared_at
            audible_ms = peer.heard.speech_ms_between(first_heard, cleared_at)
            span_ms = (cleared_at - first_heard) * 1000
            # the history is cut where the track stopped: at least the loud frames we heard, at most the
            # time from the first of them to the clear (plus the reply's quiet start and network slack)
            cut_ms = truncated["audio_end_ms"]
            assert cut_ms > 500
            assert audible_ms - 100 <= cut_ms <= span_ms + 300, (cut_ms, audible_ms, span_ms)
            done = await peer.wait_for("response.done", 20)
            assert done["response"]["status"] == "cancelled"
            await asyncio.sleep(0.6)
            later = peer.at("output_audio_buffer.started", after=cleared_at) or time.monotonic()
            leaked = peer.heard.speech_ms_between(cleared_at + 0.25, min(later, cleared_at + 0.6))
            assert leaked == 0, f"{leaked} ms of the cut reply still played after the clear"
            assert "response.output_audio.delta" not in peer.types()
        finally:
            await peer.close()
        await wait_live(0, 10)

    ns.arun(scenario)


def test_hangup_and_side_band(ns: Namespace, stack: Stack) -> None:
    import websockets

    async def scenario() -> None:
        peer = Peer()
        try:  # a server-side caller: multipart with the session config, API key
            await connected(peer, session={"type": "realtime", "instructions": "You are a test."})
            created = await peer.wait_for("session.created")
            assert created["session"]["instructions"] == "You are a test."
            assert await live_sessions() == 1
            call_id = (peer.location or "").rsplit("/", 1)[-1]
            assert len(await call_keys()) == 1
            url = f"ws://127.0.0.1:8001/v1/realtime?call_id={call_id}"
            headers = {"Authorization": f"Bearer {KEY}"}
            async with websockets.connect(url, additional_headers=headers) as side:
                await side.send('{"type": "session.update", "session": {"type": "realtime", '
                                '"instructions": "Speak like a pirate."}}')  # fmt: skip
                seen = await asyncio.wait_for(side.recv(), 10)
                assert '"session.updated"' in str(seen) and "pirate" in str(seen)
                update = await peer.wait_for("session.updated", 10)
                assert "pirate" in update["session"]["instructions"]
            async with httpx.AsyncClient(trust_env=False) as client:
                bad = await client.post(f"{CALLS}/{call_id}/hangup", headers={"Authorization": "Bearer nope"})
                assert bad.status_code == 401 and bad.json()["error"]["code"]
                missing = await client.post(f"{CALLS}/rtc_unknown/hangup", headers=headers)
                assert missing.status_code == 404 and missing.json()["error"]["code"] == "call_not_found"
                hung = await client.post(f"{CALLS}/{call_id}/hangup", headers=headers)
                assert hung.status_code == 200
            await wait_live(0, 5)
            assert await call_keys() == []
        finally:
            await peer.close()

    ns.arun(scenario)


def test_a_call_whose_ice_never_completes_frees_its_slot(ns: Namespace, stack: Stack) -> None:
    async def scenario() -> None:
        peer = Peer()
        offer = await peer.offer()
        await peer.close()  # the client goes away before any connectivity check
        no_candidates = "".join(
            line + "\r\n" for line in offer.splitlines() if not line.startswith("a=candidate")
        )
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"}
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(CALLS, content=no_candidates, headers=headers)
        assert response.status_code == 201, response.text
        assert await live_sessions() == 1
        await wait_live(0, 17)  # the watchdog gives ICE 15 s
        assert await call_keys() == []

    ns.arun(scenario)


def test_bad_input_is_refused_with_json_and_leaves_nothing_allocated(ns: Namespace, stack: Stack) -> None:
    from aiortc import RTCPeerConnection

    async def refused(status: int, token: str, sdp: str | None = None, **kw: Any) -> dict[str, Any]:
        peer = Peer()
        try:
            response = await peer.call(CALLS, token, sdp=sdp, **kw)
        finally:
            await peer.close()
        assert response.status_code == status, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        return response.json()["error"]

    async def scenario() -> None:
        secret = await mint()
        # a malformed offer is refused before the secret is consumed: it still works afterwards
        assert (await refused(400, secret, sdp="v=0\r\nthis is not an offer\r\n"))["code"] == "invalid_offer"
        data_only = RTCPeerConnection()
        data_only.createDataChannel("oai-events")
        await data_only.setLocalDescription(await data_only.createOffer())
        no_audio = data_only.localDescription.sdp
        await data_only.close()
        error = await refused(400, secret, sdp=no_audio)
        assert "audio" in error["message"]
        bad_session = {"type": "realtime", "audio": {"output": {"voice": 7}}}
        assert (await refused(400, secret, session=bad_session))["code"] == "invalid_session"
        await refused(401, "ek_forged_" + "x" * 30)
        await refused(401, "")
        expired = await mint(ttl_s=1)
        await asyncio.sleep(1.2)
        await refused(401, expired)
        first = Peer()
        try:
            await connected(first, secret)  # the secret survived the refused offers above
            assert (await refused(401, secret))["code"] == "invalid_api_key"  # single use
        finally:
            await first.close()
        await wait_live(0, 10)
        assert await call_keys() == []

    ns.arun(scenario)


def test_calls_through_the_api_origin(ns: Namespace, stack: Stack) -> None:
    """The API's `/v1/realtime/calls` forwards to the least loaded pool process; hangup follows the call."""
    from api.main import create_app
    from pipelines.settings import Settings

    settings = Settings(redis_url=REDIS_URL, api_keys=[KEY], data_dir=stack.tmp,
                        database_url=f"sqlite:///{stack.tmp / 'api.db'}")  # fmt: skip

    async def scenario() -> None:
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        peer = Peer()
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
                offer = await peer.offer()
                headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"}
                response = await api.post("/v1/realtime/calls", content=offer, headers=headers)
                assert response.status_code == 201, response.text
                location = response.headers["location"]
                from aiortc import RTCSessionDescription

                await peer.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
                await asyncio.wait_for(peer.opened.wait(), 15)
                await peer.wait_for("session.created", 15)
                hung = await api.post(location + "/hangup", headers={"Authorization": f"Bearer {KEY}"})
                assert hung.status_code == 200, hung.text
                gone = await api.post(location + "/hangup", headers={"Authorization": f"Bearer {KEY}"})
                assert gone.status_code == 404 and gone.json()["error"]["code"] == "call_not_found"
        finally:
            await peer.close()
        await wait_live(0, 5)

    ns.arun(scenario)


def test_udp_port_range_and_advertised_address(ns: Namespace) -> None:
    """What a cluster sets: host candidates bind only in the exposed range, and the answer names the
    advertised address instead of the pod's own."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    from workers.realtime.webrtc_ice import advertise, ports_of, use_port_range

    async def offer() -> str:
        use_port_range((41000, 41003))
        try:
            pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(3)]
            for pc in pcs:
                pc.addTransceiver("audio")
                await pc.setLocalDescription(await pc.createOffer())
            sdps = [pc.localDescription.sdp for pc in pcs]
            for pc in pcs:
                await pc.close()
        finally:
            use_port_range(None)
        ports = [p for sdp in sdps for p in ports_of(sdp)]
        assert len(set(ports)) == 3 and all(41000 <= p <= 41003 for p in ports), ports
        return sdps[0]

    sdp = ns.arun(offer)
    public = advertise(sdp, "203.0.113.7")
    candidates = [line for line in public.splitlines() if line.startswith("a=candidate")]
    assert candidates and all(" 203.0.113.7 " in line for line in candidates)
    assert ports_of(public) == ports_of(sdp)
