"""Turn taking alone: audio in, turn event types out, for server_vad and semantic_vad (fake VAD and judge)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from pipelines.realtime.config import EAGERNESS_SILENCE_MS, TurnDetection
from pipelines.realtime.semantic import EAGERNESS, OPENAI_MAX_WAIT_MS, finished, preset_for, words_say
from pipelines.realtime.turn_taking import TurnTaking
from pipelines.realtime.turns import SpeechStopped, TurnEvent
from tests.pipelines.realtime.fakes import LoudnessVAD

RATE = 16_000
SEMANTIC = TurnDetection(
    type="semantic_vad", eagerness="auto", silence_duration_ms=EAGERNESS_SILENCE_MS["auto"]
)


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 0.3).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), dtype=np.float32)


def cat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


class FixedModel:
    def __init__(self, p: float) -> None:
        self.p, self.calls = p, 0

    def probability(self, audio: np.ndarray) -> float:
        self.calls += 1
        return self.p


class Recorder:
    """The events with the audio time (ms fed so far) at which each arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[int, TurnEvent]] = []
        self.fed_ms = 0

    async def __call__(self, ev: TurnEvent) -> None:
        self.events.append((self.fed_ms, ev))

    def types(self) -> list[str]:
        return [type(ev).__name__ for _, ev in self.events]

    def at(self, kind: type) -> int:
        return next(ms for ms, ev in self.events if isinstance(ev, kind))


def make(params: TurnDetection, model: FixedModel | None, words: str | None, rec: Recorder) -> TurnTaking:
    heard = np.zeros(0, dtype=np.float32)

    async def transcript() -> str | None:
        return words

    return TurnTaking(LoudnessVAD(), params, rec, audio=lambda: heard, transcript=transcript, model=model)


async def stream(tt: TurnTaking, rec: Recorder, audio: np.ndarray) -> None:
    """Feed 20 ms chunks, letting the judge's thread run between them as a live stream would."""
    for i in range(0, len(audio), 320):
        await tt.feed(audio[i : i + 320])
        rec.fed_ms += 20
        await asyncio.sleep(0.002)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_server_vad_ends_the_turn_after_its_silence() -> None:
    async def main() -> None:
        rec = Recorder()
        tt = make(TurnDetection(), None, None, rec)
        await stream(tt, rec, cat(silence(0.2), tone(1.0), silence(0.8)))
        assert rec.types() == ["SpeechStarted", "Pausing", "SpeechStopped"]
        assert 1200 + 500 - 40 <= rec.at(SpeechStopped) <= 1200 + 500 + 60

    run(main())


def test_semantic_finished_question_ends_after_a_short_pause() -> None:
    async def main() -> None:
        rec = Recorder()
        model = FixedModel(0.9)
        tt = make(SEMANTIC, model, "What is the capital of France?", rec)
        await stream(tt, rec, cat(tone(1.0), silence(1.0)))
        assert rec.types() == ["SpeechStarted", "Pausing", "SpeechStopped"]
        pause_ms = rec.at(SpeechStopped) - 1000
        assert EAGERNESS["auto"].candidate_ms <= pause_ms <= 320  # ~200 ms, not 500
        assert tt.verdicts[0].finished and model.calls == 1

    run(main())


@pytest.mark.parametrize(("p", "words"), [(0.2, "What is the capital of France?"), (0.9, "I want to go to")])
def test_semantic_unfinished_pause_gets_no_turn_end(p: float, words: str) -> None:
    """The model (or a trailing "to") says unfinished: a 0.9 s pause ends nothing, speech resumes."""

    async def main() -> None:
        rec = Recorder()
        tt = make(SEMANTIC, FixedModel(p), words, rec)
        await stream(tt, rec, cat(tone(1.0), silence(0.9), tone(0.5)))
        assert rec.types() == ["SpeechStarted", "Pausing", "Resumed"]
        assert len(tt.verdicts) >= 2 and not any(v.finished for v in tt.verdicts)  # judged, and rechecked

    run(main())


def test_semantic_unfinished_turn_still_ends_at_the_maximum_wait() -> None:
    async def main() -> None:
        rec = Recorder()
        tt = make(SEMANTIC, FixedModel(0.1), "and then um", rec)
        await stream(tt, rec, cat(tone(0.6), silence(2.3)))
        assert rec.types() == ["SpeechStarted", "Pausing", "SpeechStopped"]
        assert abs(rec.at(SpeechStopped) - 600 - EAGERNESS["auto"].max_wait_ms) <= 60

    run(main())


def test_semantic_without_a_model_judges_the_words() -> None:
    async def main() -> None:
        for words, ends in (("Is it raining today?", True), ("Is it raining because", False)):
            rec = Recorder()
            tt = make(SEMANTIC, None, words, rec)
            await stream(tt, rec, cat(tone(0.6), silence(0.6)))
            assert ("SpeechStopped" in rec.types()) is ends

    run(main())


def test_a_verdict_for_an_old_pause_does_not_end_a_new_utterance() -> None:
    """The user speaks again while the judge runs: its "finished" must not cut the new speech."""

    class SlowModel(FixedModel):
        def probability(self, audio: np.ndarray) -> float:
            import time

            time.sleep(0.15)
            return super().probability(audio)

    async def main() -> None:
        rec = Recorder()
        tt = make(SEMANTIC, SlowModel(0.95), "Tell me", rec)
        # the judge starts at ~192 ms of silence; speech comes back at 240 ms, before it answers
        await stream(tt, rec, cat(tone(0.6), silence(0.24), tone(1.0)))
        await asyncio.sleep(0.3)
        assert rec.types() == ["SpeechStarted", "Pausing", "Resumed"]

    run(main())


def test_what_the_words_say() -> None:
    assert words_say("I'd like to order a pizza and") == "hold"
    assert words_say("so the thing is, um") == "hold"
    assert words_say("My favorite city is...") == "hold"
    assert words_say("Tell me a fun fact about") == "unsure"
    assert words_say("I was thinking about.") == "unsure"
    assert words_say("Please remind me to call my mother") == "unsure"
    assert words_say("Where are you from?") == "complete"
    assert words_say("What is this story about?") == "complete"
    assert words_say("Can you tell me a story about?") == "unsure"  # Whisper's "?" on a first half
    assert words_say("What is the capital of France?") == "complete"
    assert words_say("Thank you.") == "complete"
    assert words_say("") is None and words_say(None) is None


def test_verdicts() -> None:
    auto = preset_for("auto")
    assert finished(0.9, "How tall is Everest?", 192, auto)
    assert not finished(0.3, "How tall is Everest?", 192, auto)
    assert not finished(0.99, "How tall is Everest and", 1900, auto)  # held until the maximum wait
    assert not finished(0.9, "Tell me a fun fact about", 448, auto)
    assert finished(0.9, "Tell me a fun fact about", auto.unsure_wait_ms, auto)
    assert finished(None, "Where is it?", 192, auto) and not finished(None, "Where is the", 192, auto)
    assert not finished(None, None, 192, auto) and finished(None, None, 512, auto)


def test_a_full_sentence_outvotes_a_doubting_model_after_a_long_pause() -> None:
    """Smart Turn gives 0.3 to espeak-ng's "What is the capital of France?": after a second of silence the
    words win (the Agents SDK's VoicePipeline sends two such sentences 1.5 s apart), but not within the
    0.6-0.9 s pauses people make inside a sentence, nor for words that hold the turn."""
    auto = preset_for("auto")
    assert not finished(0.3, "What is the capital of France?", 900, auto)
    assert finished(0.3, "What is the capital of France?", auto.unsure_wait_ms, auto)
    assert not finished(0.3, "Tell me a fun fact about", auto.unsure_wait_ms, auto)
    assert not finished(0.3, "I would like a table and", auto.unsure_wait_ms, auto)


def test_presets_stay_within_openais_caps_and_config_agrees() -> None:
    for name, preset in EAGERNESS.items():
        assert preset.candidate_ms < preset.unsure_wait_ms < preset.max_wait_ms
        assert preset.max_wait_ms <= OPENAI_MAX_WAIT_MS[name]
        assert EAGERNESS_SILENCE_MS[name] == preset.max_wait_ms
    eager = [EAGERNESS[n] for n in ("low", "medium", "high")]
    assert [p.candidate_ms for p in eager] == sorted((p.candidate_ms for p in eager), reverse=True)
    assert replace(SEMANTIC, eagerness=None).eagerness is None and preset_for(None) == EAGERNESS["auto"]
