"""Turn taking: audio in, turn events out, for server_vad and semantic_vad alike.

`TurnDetector` turns VAD frames into events synchronously; for semantic_vad each `Candidate` pause is
judged here, off the event loop (the end-of-turn model runs in a thread), together with the words of
the speculative transcript (`semantic.finished`). A "finished" verdict ends the turn at once if the user
is still silent; otherwise the pause is judged again later, and the detector ends it at the preset's
maximum wait. Events reach `on_event` one at a time and in order, whether they came from the audio or
from a verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from pipelines.realtime.config import TurnDetection
from pipelines.realtime.semantic import EndOfTurnModel, finished, preset_for
from pipelines.realtime.turns import Candidate, TurnDetector, TurnEvent, VoiceActivity

log = logging.getLogger(__name__)

#: the end-of-turn model sees at most this much of the utterance (it was trained on 8 s windows)
JUDGE_WINDOW_SAMPLES = 8 * 16_000


@dataclass(frozen=True)
class Verdict:
    """One judgement of a pause: kept for tests, logs and the bench's profile."""

    pause_id: int
    silence_ms: int
    probability: float | None
    transcript: str | None
    finished: bool
    model_ms: float


class TurnTaking:
    """Feeds audio to the turn detector and, for semantic_vad, judges its candidate pauses.

    `audio()` returns the utterance so far (the input buffer); `transcript()` awaits the speculative
    transcript of the current pause, or returns None when there is none."""

    def __init__(
        self,
        vad: VoiceActivity,
        params: TurnDetection,
        on_event: Callable[[TurnEvent], Awaitable[None]],
        *,
        audio: Callable[[], np.ndarray],
        transcript: Callable[[], Awaitable[str | None]],
        model: EndOfTurnModel | None = None,
        speculate_after_ms: int = 96,
    ) -> None:
        self.params = params
        self.preset = preset_for(params.eagerness) if params.type == "semantic_vad" else None
        candidates = (self.preset.candidate_ms, self.preset.recheck_ms) if self.preset else None
        self.detector = TurnDetector(
            vad, params, speculate_after_ms=speculate_after_ms, candidates=candidates
        )
        self._on_event = on_event
        self._audio = audio
        self._transcript = transcript
        self._model = model
        self._order = asyncio.Lock()
        self._judging: asyncio.Task[None] | None = None
        self.verdicts: list[Verdict] = []

    @property
    def speaking(self) -> bool:
        return self.detector.speaking

    async def feed(self, samples: np.ndarray) -> None:
        for ev in self.detector.feed(samples):
            if isinstance(ev, Candidate):
                self._judge(ev)
            else:
                await self._deliver(ev)

    async def _deliver(self, ev: TurnEvent) -> None:
        async with self._order:
            await self._on_event(ev)

    def _judge(self, candidate: Candidate) -> None:
        if self._judging is not None and not self._judging.done():
            return  # the previous judgement of this pause is still running; the next check comes later
        self._judging = asyncio.ensure_future(self._run_judge(candidate))

    async def _words(self, silence_ms: int) -> str | None:
        """The speculative transcript, waited for only until the pause reaches `unsure_wait_ms`.

        On a loaded machine Whisper can take longer than the pause itself; a verdict that waited for it
        would land after the user spoke again and be thrown away, merging two turns. Past that point the
        model's verdict stands alone (as it does without words)."""
        assert self.preset is not None
        budget_s = max(0.05, (self.preset.unsure_wait_ms - silence_ms) / 1000)
        try:
            return await asyncio.wait_for(self._transcript(), budget_s)
        except TimeoutError:
            log.info("semantic_vad: no transcript in %.0f ms; the model judges alone", budget_s * 1000)
            return None

    async def _run_judge(self, candidate: Candidate) -> None:
        assert self.preset is not None
        probability: float | None = None
        model_ms = 0.0
        if self._model is not None:
            audio = self._audio()[-JUDGE_WINDOW_SAMPLES:].copy()
            t0 = time.perf_counter()
            try:
                probability = await asyncio.to_thread(self._model.probability, audio)
            except Exception:  # the words still decide; a broken model must not end the session
                log.exception("end-of-turn model failed")
            model_ms = (time.perf_counter() - t0) * 1000
        # The words matter if the sound says "finished", or once the pause is long enough for a full
        # sentence to outvote a doubting model (`semantic.finished`); before that none are awaited.
        text = None
        if (
            probability is None
            or probability >= self.preset.threshold
            or candidate.silence_ms >= self.preset.unsure_wait_ms
        ):
            text = await self._words(candidate.silence_ms)
        done = finished(probability, text, candidate.silence_ms, self.preset)
        self.verdicts.append(
            Verdict(candidate.pause_id, candidate.silence_ms, probability, text, done, model_ms)
        )
        if not done:
            return
        stopped = self.detector.end_turn(candidate.pause_id)
        if stopped is not None:
            await self._deliver(stopped)

    def reset(self) -> None:
        self.detector.reset()
        self._cancel_judge()

    def _cancel_judge(self) -> None:
        if self._judging is not None:
            self._judging.cancel()
            self._judging = None

    def close(self) -> None:
        self._cancel_judge()
