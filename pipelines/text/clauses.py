"""The first words of a streamed reply that can be spoken before its first sentence is over.

A voice reply's first audio waits for the text sent to TTS, and TTS time grows with that text: measured
turn by turn (bench/realtime_profile.py, espeak-ng questions, 2 cores), an opening sentence without a
comma ("Vaccines are a type of medical treatment that helps the body ...") held the first audio back
500-700 ms after the first token, and then took 0.3-1 s to synthesize. So the opening is cut at the
first natural phrase boundary once a few words exist, in this order of preference:

1. a comma, semicolon or colon after 3 words ("The capital of France is Paris,");
2. before a word that opens a clause ("that", "because", "when", ...) after 3 words ("and" and "or"
   join noun phrases too often: "the difference between weather | and climate");
3. before a preposition after 4 words ("A refrigerator keeps food cold | by using ...");
4. after 6 words, where the sixth (or a later) word can end a phrase: not an article, a preposition,
   a conjunction, an auxiliary or a number word ("The season on earth is a | recurring ..." would stop
   mid-phrase, so it goes on to "... a recurring");
5. after 10 words, whatever follows.

Why 6 and not 10: with the 10 s live Whisper window the reply's first tokens arrive while the
`server_vad` silence is still running, and a 10-word opening without a boundary held the first audio
past the turn end (bench/realtime_profile.py, server_vad, 8 espeak-ng questions a run, alternating:
p50 623 and 604 ms with a plain cut at 10 words, 581 and 591 ms at 6; this rule, one run after: 583 ms,
about the turn end itself).

Only whole words count: the last word of streamed text may still be growing ("Vacc" -> "Vaccines"), so it
is considered only once the text goes on past it. Cutting before a word keeps the phrase it opens
together, which is where a speaker would breathe; the rest of the sentence follows as the next chunk.
"""

from __future__ import annotations

import re

from pipelines.text.numbers import TEENS, TENS, UNITS

MARK_MIN_WORDS = 3
OPENER_MIN_WORDS = 3
PREPOSITION_MIN_WORDS = 4
SOFT_MAX_WORDS = 6
MAX_WORDS = 10

_MARKS = (", ", "; ", ": ")
#: words that open a subordinate or coordinate clause
CLAUSE_OPENERS = frozenset(
    {
        "that", "which", "who", "whom", "whose", "because", "but", "so", "when", "where", "while",
        "if", "although", "though", "since", "until", "unless", "whereas",
    }
)  # fmt: skip
#: prepositions that open a phrase a speaker can pause before
PREPOSITIONS = frozenset(
    {
        "in", "on", "at", "for", "with", "from", "by", "about", "into", "during", "after", "before",
        "between", "through", "over", "under", "around", "across", "against", "without", "within",
    }
)  # fmt: skip


#: words a phrase does not end on: cutting after them stops it mid-phrase
_NO_ENDING = (
    frozenset(
        {
            "a", "an", "the", "of", "to", "as", "and", "or", "nor", "is", "are", "was", "were", "be",
            "been", "being", "am", "has", "have", "had", "do", "does", "did", "will", "would", "can",
            "could", "should", "may", "might", "must", "shall", "my", "your", "his", "her", "its", "our",
            "their", "this", "these", "those", "very", "not", "no", "more", "most", "such", "than",
            "hundred", "thousand", "million", "billion",
        }
    )
    | PREPOSITIONS
    | CLAUSE_OPENERS
    | frozenset(UNITS)
    | frozenset(TEENS)
    | frozenset(TENS)
)  # fmt: skip


def _bare(word: re.Match[str]) -> str:
    return word.group().lower().strip("\"'“”‘’()")


def first_chunk(text: str) -> str | None:
    """The opening of `text` to speak now (a prefix of it), or None to wait for more (see the module)."""
    marked = _at_mark(text)
    if marked is not None:
        return marked
    words = _whole_words(text)
    for i, word in enumerate(words):
        bare = _bare(word)
        if (i >= OPENER_MIN_WORDS and bare in CLAUSE_OPENERS) or (
            i >= PREPOSITION_MIN_WORDS and bare in PREPOSITIONS
        ):
            return text[: words[i - 1].end()]
        if i >= SOFT_MAX_WORDS and _bare(words[i - 1]) not in _NO_ENDING:
            return text[: words[i - 1].end()]
        if i >= MAX_WORDS:
            return text[: words[MAX_WORDS - 1].end()]
    return None


def _at_mark(text: str) -> str | None:
    cut = max(text.rfind(mark) for mark in _MARKS)
    if cut < 0 or len(text[:cut].split()) < MARK_MIN_WORDS:
        return None
    return text[: cut + 1]


_WORD = re.compile(r"\S+")


def _whole_words(text: str) -> list[re.Match[str]]:
    """The words of `text` known to be complete: all but a last one that nothing follows yet."""
    words = list(_WORD.finditer(text))
    if words and words[-1].end() == len(text):
        words.pop()
    return words
