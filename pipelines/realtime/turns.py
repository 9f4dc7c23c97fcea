"""Turn detection over 16 kHz audio, timed in samples (not wall clock) so it is exact and testable.

Speech starts on the first 32 ms frame whose speech probability reaches `threshold`; it stops once
the probability has stayed below `threshold - 0.15` (silero's own hysteresis) for `silence_duration_ms`.
`Pausing` is reported early in that silence so a response can be prepared speculatively and thrown away
if the user goes on speaking (`Resumed`).

For semantic_vad, `silence_duration_ms` is the longest wait, and `Candidate` marks the pauses where an
end-of-turn judge is asked (see `semantic.py`); a judge that says "finished" calls `end_turn`, which
ends the turn at once if that very pause is still going on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipelines.realtime.config import TurnDetection

FRAME = 512  # samples at 16 kHz: the window silero VAD is trained on
FRAME_MS = FRAME / 16


class VoiceActivity(Protocol):
    """Silero-style VAD: one 512-sample float32 frame in, speech probability out; stateful per stream."""

    def probability(self, frame: np.ndarray) -> float: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True)
class Pausing:
    """Silence began `after_ms` ago and may end the turn: a hint to start work speculatively."""

    audio_end_ms: int


@dataclass(frozen=True)
class Resumed:
    """Speech came back after a `Pausing`: speculative work for that pause is stale."""


@dataclass(frozen=True)
class Candidate:
    """semantic_vad: the pause `pause_id` has lasted `silence_ms`; judge whether the turn is over."""

    pause_id: int
    silence_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    audio_end_ms: int


TurnEvent = SpeechStarted | Pausing | Resumed | Candidate | SpeechStopped


class TurnDetector:
    """Feeds frames to the VAD and turns probabilities into turn events."""

    def __init__(
        self,
        vad: VoiceActivity,
        params: TurnDetection,
        *,
        speculate_after_ms: int = 160,
        candidates: tuple[int, int] | None = None,
    ) -> None:
        """`candidates` (semantic_vad): the first judged pause and the interval between later judgements,
        in ms of silence."""
        self.vad = vad
        self.params = params
        self.speculate_after_ms = min(speculate_after_ms, params.silence_duration_ms)
        if candidates is not None:
            self.speculate_after_ms = min(self.speculate_after_ms, candidates[0])
        self.candidates = candidates
        self.pause_id = 0  # which pause `Candidate` and `end_turn` refer to
        self._next_candidate_ms = 0.0
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames = 0  # frames processed since the stream began
        self.speaking = False
        self._silent_frames = 0
        self._paused = False
        self._last_speech_end_ms = 0

    @property
    def now_ms(self) -> int:
        return int(self._frames * FRAME_MS)

    def feed(self, samples: np.ndarray) -> list[TurnEvent]:
        """Consume 16 kHz float32 audio; return the turn events it caused, in order."""
        data = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        events: list[TurnEvent] = []
        n = len(data) // FRAME
        for i in range(n):
            events.extend(self._frame(data[i * FRAME : (i + 1) * FRAME]))
        self._pending = data[n * FRAME :].copy()
        return events

    def _frame(self, frame: np.ndarray) -> list[TurnEvent]:
        p = self.vad.probability(frame)
        self._frames += 1
        t = self.params
        if not self.speaking:
            if p >= t.threshold:
                self.speaking, self._silent_frames, self._paused = True, 0, False
                return [SpeechStarted(audio_start_ms=max(0, int((self._frames - 1) * FRAME_MS)))]
            return []
        if p >= t.threshold - 0.15:
            self._silent_frames = 0
            if self._paused:
                self._paused = False
                return [Resumed()]
            return []
        if self._silent_frames == 0:
            self._last_speech_end_ms = int((self._frames - 1) * FRAME_MS)
            self.pause_id += 1
            self._next_candidate_ms = self.candidates[0] if self.candidates else float("inf")
        self._silent_frames += 1
        silent_ms = self._silent_frames * FRAME_MS
        out: list[TurnEvent] = []
        if not self._paused and silent_ms >= self.speculate_after_ms and silent_ms < t.silence_duration_ms:
            self._paused = True
            out.append(Pausing(audio_end_ms=self._last_speech_end_ms))
        if self.candidates and silent_ms >= self._next_candidate_ms and silent_ms < t.silence_duration_ms:
            self._next_candidate_ms += self.candidates[1]
            out.append(Candidate(pause_id=self.pause_id, silence_ms=int(silent_ms)))
        if silent_ms >= t.silence_duration_ms:
            self.speaking, self._paused = False, False
            out.append(SpeechStopped(audio_end_ms=self.now_ms))
        return out

    def end_turn(self, pause_id: int) -> SpeechStopped | None:
        """End the turn now, if the pause `pause_id` is still going on (the user has not spoken since)."""
        if not self.speaking or self._silent_frames == 0 or pause_id != self.pause_id:
            return None
        self.speaking, self._paused = False, False
        return SpeechStopped(audio_end_ms=self.now_ms)

    def reset(self) -> None:
        """Forget a turn in progress (buffer cleared, or turn detection changed)."""
        self.speaking, self._paused, self._silent_frames = False, False, 0
        self.vad.reset()
