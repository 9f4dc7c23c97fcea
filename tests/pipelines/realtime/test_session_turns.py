"""A whole session with semantic_vad, and a reply stored before its `response.done` (fake models)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np

from pipelines.realtime.persistence import MemorySink, Record
from tests.pipelines.realtime.fakes import fake_engines, silence_pcm24, tone_pcm24
from tests.pipelines.realtime.harness import Harness

SEMANTIC = {
    "type": "realtime",
    "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "auto"}}},
}


class FixedModel:
    def __init__(self, p: float) -> None:
        self.p = p

    def probability(self, audio: np.ndarray) -> float:
        return self.p


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def live(h: Harness, pcm: bytes) -> None:
    """Stream at (about) real-time pace, 20 ms a chunk, so a verdict can land inside the pause."""
    step = 48 * 20
    for i in range(0, len(pcm), step):
        await h.audio(pcm[i : i + step])
        await asyncio.sleep(0.02)


def test_semantic_vad_answers_a_finished_question_after_a_short_pause() -> None:
    async def main() -> None:
        engines = fake_engines(reply="It is sunny.")
        engines.turn_model = FixedModel(0.9)
        h = Harness(engines)
        await h.session.start()
        await h.send(type="session.update", session=SEMANTIC)
        td = h.of("session.updated")[0]["session"]["audio"]["input"]["turn_detection"]
        assert td == {"type": "semantic_vad", "eagerness": "auto", "create_response": True,
                      "interrupt_response": True}  # fmt: skip
        await live(h, tone_pcm24(1.0) + silence_pcm24(1.0))
        done = await h.wait_for("response.done")
        assert done["response"]["status"] == "completed"
        stopped = h.of("input_audio_buffer.speech_stopped")[0]
        assert 1000 + 192 <= stopped["audio_end_ms"] <= 1000 + 400  # ~200 ms after the speech, not 500
        assert engines.stt.calls == 1  # type: ignore[attr-defined]  # the speculation was adopted

    run(main())


def test_semantic_vad_does_not_cut_in_on_an_unfinished_pause() -> None:
    async def main() -> None:
        engines = fake_engines(reply="It is sunny.")
        engines.turn_model = FixedModel(0.15)
        h = Harness(engines)
        await h.session.start()
        await h.send(type="session.update", session=SEMANTIC)
        await live(h, tone_pcm24(0.8) + silence_pcm24(0.8) + tone_pcm24(0.6) + silence_pcm24(0.4))
        await h.settle(0.2)
        assert h.of("response.created") == [] and h.of("input_audio_buffer.speech_stopped") == []
        await live(h, silence_pcm24(1.8))  # the maximum wait (2 s) ends the turn all the same
        await h.wait_for("response.done")
        assert len(h.of("input_audio_buffer.speech_started")) == 1
        assert len(h.of("response.created")) == 1

    run(main())


class SlowSink(MemorySink):
    """Storage that takes its time; records what was stored by the moment each event went out."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def upsert(self, record: Record) -> None:
        time.sleep(0.05)
        with self.lock:
            super().upsert(record)


def test_a_reply_is_stored_before_its_response_done_goes_out() -> None:
    async def main() -> None:
        sink = SlowSink()
        stored_at_done: list[list[str]] = []
        h = Harness(fake_engines(reply="It is sunny. Take a hat."), sink=sink)
        emit = h.session._emit

        async def watching(data: dict[str, Any]) -> None:
            if data["type"] == "response.done":
                with sink.lock:
                    stored_at_done.append([r.text for r in sink.records.values() if r.kind == "assistant"])
            await emit(data)

        h.session._emit = watching
        await h.session.start()
        await h.audio(tone_pcm24(0.6) + silence_pcm24(0.8))
        await h.wait_for("response.done")
        assert stored_at_done == [["It is sunny. Take a hat."]]
        await h.session.close()

    run(main())


def test_sessions_get_their_own_llm_context_and_reply_side_by_side() -> None:
    """With two contexts, two sessions' replies generate at once (interleaved per token), each on its own
    context, so neither waits for the other's last sentence; a third session shares the least used."""
    from pipelines.realtime.engines import Engines
    from tests.pipelines.realtime.fakes import FixedSTT, LoudnessVAD, ScriptedChat, ToneTTS

    async def main() -> None:
        reply = "One two three. Four five six. Seven eight nine."
        chats = [ScriptedChat(reply=reply, token_delay_s=0.02) for _ in range(2)]
        engines = Engines(
            stt=FixedSTT(), chat=chats[0], tts=ToneTTS(), make_vad=LoudnessVAD, extra_chats=[chats[1]]
        )
        sessions = [Harness(engines) for _ in range(3)]
        assert [h.session.slot.chat for h in sessions] == [chats[0], chats[1], chats[0]]
        for h in sessions[:2]:
            await h.session.start()
        await asyncio.gather(*(h.audio(tone_pcm24(0.6) + silence_pcm24(0.8)) for h in sessions[:2]))
        await asyncio.gather(*(h.wait_for("response.done") for h in sessions[:2]))
        assert all(len(c.seen) == 1 for c in chats)
        for h in sessions:
            await h.session.close()
        assert [s.sessions for s in engines.slots] == [0, 0]

    run(main())


def test_urgent_work_goes_before_plain_waiters() -> None:
    from pipelines.realtime.engines import FairLock

    lock, order = FairLock(), []
    lock.__enter__()  # held: the others queue up

    def take(name: str, urgent: bool) -> None:
        with lock.hold(urgent):
            order.append(name)

    threads = [threading.Thread(target=take, args=(n, n.startswith("u"))) for n in ("p1", "p2", "u1")]
    for t in threads:
        t.start()
        time.sleep(0.05)
    lock.__exit__()
    for t in threads:
        t.join(5)
    assert order == ["u1", "p1", "p2"]


def test_server_vad_idle_timeout_prompts_a_reply_after_silence() -> None:
    """`idle_timeout_ms`: the user says nothing after a reply, the session triggers a turn itself. As
    OpenAI documents it, the timeout applies after every model response, so it prompts again later."""

    async def main() -> None:
        h = Harness(fake_engines(reply="Are you still there?"))
        await h.session.start()
        server_vad = {"type": "server_vad", "silence_duration_ms": 300, "idle_timeout_ms": 400}
        session = {"type": "realtime", "audio": {"input": {"turn_detection": server_vad}}}
        await h.send(type="session.update", session=session)
        await live(h, tone_pcm24(0.6) + silence_pcm24(0.5))
        await h.wait_for("response.done")
        assert h.of("input_audio_buffer.timeout_triggered") == []
        await live(h, silence_pcm24(0.8))  # nothing said for longer than the idle timeout
        triggered = await h.wait_for("input_audio_buffer.timeout_triggered")
        assert triggered["item_id"].startswith("item")
        await h.settle(0.3)
        kinds = [t for t in h.types() if t in ("response.done", "input_audio_buffer.timeout_triggered")]
        assert kinds[:3] == ["response.done", "input_audio_buffer.timeout_triggered", "response.done"]

    run(main())
