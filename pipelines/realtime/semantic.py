"""semantic_vad: when a pause ends the turn, judged by an end-of-turn model and the words heard so far.

A plain VAD must wait long enough for the slowest thinker; here the pause is judged instead. At each
candidate pause the session asks the end-of-turn model (Smart Turn, acoustic: intonation, rhythm) how
likely the user has finished, and reads the speculative transcript (Whisper's, punctuated):
- it ends on a conjunction, an article or a filler ("and", "the", "um"), or trails off ("...", ","):
  unfinished, whatever the intonation (acoustic models judge synthetic speech "finished" too readily:
  on espeak-ng Smart Turn gives 0.8-0.98 to "I would like to book a table for");
- it ends on a preposition, or without a full stop or question mark: unsure; it may end only after
  `unsure_wait_ms` of silence;
- a full sentence: finished once the model agrees (`threshold`), or once the silence has also reached
  `unsure_wait_ms`: on voices it was not trained on (espeak-ng) Smart Turn gives 0.3 to "What is the
  capital of France?", and the words, with a second of silence behind them, outvote it; a pause inside
  an utterance (0.6-0.9 s) stays shorter than that.
A finished turn ends at once; any other is judged again every `recheck_ms`, and ends at the preset's
maximum wait at the latest.

`eagerness` picks a preset. OpenAI documents its semantic_vad caps as 8 s (low), 4 s (medium, auto)
and 2 s (high); those are the outer limits, the presets here wait less, since a local model answers fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class EndOfTurnModel(Protocol):
    """P(the speaker has finished) for the utterance so far (16 kHz float32, trailing pause included)."""

    def probability(self, audio: np.ndarray) -> float: ...


@dataclass(frozen=True)
class Eagerness:
    """How a semantic_vad session judges pauses."""

    #: silence (ms) before the first judgement; the turn cannot end sooner
    candidate_ms: int
    #: P(finished) at or above which the turn ends at a candidate pause
    threshold: float
    #: silence (ms) after which the turn ends whatever the model says
    max_wait_ms: int
    #: silence (ms) between later judgements of the same pause
    recheck_ms: int
    #: silence (ms) an unsure transcript (a preposition, no final punctuation) must reach
    unsure_wait_ms: int


EAGERNESS: dict[str, Eagerness] = {
    "low": Eagerness(candidate_ms=384, threshold=0.7, max_wait_ms=3000, recheck_ms=384, unsure_wait_ms=1500),
    "medium": Eagerness(
        candidate_ms=256, threshold=0.6, max_wait_ms=2000, recheck_ms=320, unsure_wait_ms=1200
    ),
    "auto": Eagerness(candidate_ms=192, threshold=0.5, max_wait_ms=2000, recheck_ms=256, unsure_wait_ms=1000),
    "high": Eagerness(candidate_ms=160, threshold=0.35, max_wait_ms=1200, recheck_ms=192, unsure_wait_ms=700),
}
#: with neither a model nor a transcript, a pause this long ends the turn (server_vad's default)
BLIND_WAIT_MS = 500
#: OpenAI's caps, per eagerness; the presets above must stay within them
OPENAI_MAX_WAIT_MS = {"low": 8000, "medium": 4000, "auto": 4000, "high": 2000}

#: words after which an English sentence is not over: conjunctions, articles, possessives, fillers
HOLD_WORDS = frozenset(
    """
    and or but so because since although though unless until while if than nor yet whether which whose
    whom plus a an the my your his her its our their some any every each no to um umm uh uhh er erm hmm
    mm i i'm i'd i'll we let's
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
#: prepositions and adverbs that often end a sentence unfinished, but also end real questions ("where
#: are you from?"): unsure unless a question mark follows
WEAK_HOLD_WORDS = frozenset(
    """
    of in on at by for from with about into onto over under between through after before during without
    within against toward towards upon as also then like
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
#: question words whose object can be left at the end: "What is it about?", "Who did you go with?"
STRANDING_WH_WORDS = frozenset({"what", "what's", "where", "where's", "who", "who's", "whom", "which"})
_WORD = re.compile(r"[a-z']+")


def words_say(transcript: str | None) -> str | None:
    """What the words alone say: "hold", "unsure", "complete", or None when there are none."""
    if transcript is None:
        return None
    text = transcript.strip().lower()
    words = _WORD.findall(text)
    if not words:
        return None
    if text.endswith(("...", "\u2026", ",", "-")) or words[-1] in HOLD_WORDS:
        return "hold"
    if text.endswith("?"):
        # "Where are you from?" ends on a preposition its wh-word strands; "Can you tell me a story
        # about?" is Whisper putting a question mark on a question's first half (espeak-ng, P=0.98)
        if words[-1] in WEAK_HOLD_WORDS and words[0] not in STRANDING_WH_WORDS:
            return "unsure"
        return "complete"
    if words[-1] in WEAK_HOLD_WORDS or not text.endswith((".", "!")):
        return "unsure"
    return "complete"


def finished(probability: float | None, transcript: str | None, silence_ms: int, preset: Eagerness) -> bool:
    """The verdict on a pause that has lasted `silence_ms`: end the turn now?

    Without a probability (no model, or it failed) the words alone decide; with neither, the pause."""
    words = words_say(transcript)
    if words == "hold":
        return False
    if words == "unsure" and silence_ms < preset.unsure_wait_ms:
        return False
    if probability is None:
        return words is not None or silence_ms >= BLIND_WAIT_MS
    if words == "complete" and silence_ms >= preset.unsure_wait_ms:
        return True  # a full sentence and a long pause: a model that doubts it is outvoted
    return probability >= preset.threshold


def preset_for(eagerness: str | None) -> Eagerness:
    return EAGERNESS.get(eagerness or "auto", EAGERNESS["auto"])
