"""Sentence boundaries for spoken replies.

Two users need them: `trim_to_last_sentence` cuts a reply that ran into the token limit back to its last
whole sentence, so the voice never stops mid-word; `SentenceSplitter` hands streamed LLM text to TTS one
sentence at a time, so the first sentence is spoken while the rest is still being generated.

Both share one rule set, and a boundary is decided only from the text up to the first non-space character
after the punctuation. Streaming in any chunking therefore gives the same sentences as splitting the whole
text at once (`split_sentences`). Where a boundary is doubtful the text is not split: merging two sentences
costs a little latency, while splitting "Dr. | Smith" or "1. | Drink water" breaks the prosody.
"""

from __future__ import annotations

import re
from enum import Enum, auto

#: Closing quotes and brackets that may follow the punctuation, as a regex character class.
_CLOSERS = "[" + re.escape("\"'”’)]»") + "]"
#: A run of sentence punctuation with any closing quotes or brackets, or a line break (a hard boundary).
_CANDIDATE = re.compile(rf"[.!?…]+{_CLOSERS}*|\n")
_ENDS_WITH_TERMINAL = re.compile(rf"[.!?…]{_CLOSERS}*$")
_LEADING_SPACE = re.compile(r"\s*")
#: "1." or "a." as the whole sentence so far: a list marker, not a sentence.
_LIST_MARKER = re.compile(r"\d{1,3}|[A-Za-z]")
#: Punctuation that says a fragment was going on; removed before the closing period is added.
_DANGLING = ",;:-–—/&(\"'“‘ \t\r\n"

#: Words whose period nearly always continues the sentence: titles before a name, and Latin shorthands.
#: Postfix abbreviations that often end a sentence ("Jr.", "Inc.", "etc.") and ones that are also words
#: ("No.", "hon.") are deliberately absent: they end a sentence when the next word is capitalised, like
#: any other period.
NON_FINAL_ABBREVIATIONS: frozenset[str] = frozenset(
    {
        "mr", "mrs", "ms", "mx", "dr", "prof", "rev", "fr", "st", "mt",
        "gen", "col", "capt", "cpt", "lt", "sgt", "cmdr", "adm", "gov", "sen", "pres",
        "e.g", "i.e", "cf", "vs", "approx", "fig", "vol", "ch", "p", "pp",
    }
)  # fmt: skip


class _Decision(Enum):
    CUT = auto()
    KEEP = auto()
    UNDECIDED = auto()  # streaming only: the character that decides has not arrived yet


def _is_non_final_period(sentence_so_far: str, punctuation: str) -> bool:
    """A single period after an abbreviation, an initial or a list number does not end the sentence."""
    if punctuation != ".":
        return False
    head = sentence_so_far.strip()
    if _LIST_MARKER.fullmatch(head):
        return True
    word = head.split()[-1].lstrip("([{\"'“‘") if head else ""
    if len(word) == 1 and word.isupper():  # an initial: "J. R. R. Tolkien"
        return True
    return word.lower() in NON_FINAL_ABBREVIATIONS


def _decide(text: str, sentence_start: int, match: re.Match[str], *, final: bool) -> _Decision:
    """Whether the punctuation run `match` ends the sentence that began at `sentence_start`."""
    gap = _LEADING_SPACE.match(text, match.end())
    gap_end = gap.end() if gap else match.end()
    if gap_end == match.end() and gap_end < len(text):
        return _Decision.KEEP  # punctuation inside a token: "3.5", "$48.50", "U.S", "e.g.,"
    head = text[sentence_start : match.start()]
    if not head.strip():
        return _Decision.KEEP  # leading "..." joins the sentence it introduces
    if "\n" in text[match.end() : gap_end]:
        return _Decision.CUT
    after = text[gap_end : gap_end + 1]
    if not after and not final:
        return _Decision.UNDECIDED
    if after.islower():
        return _Decision.KEEP  # "e.g. the", "Well... maybe", "5 p.m. today"
    if _is_non_final_period(head, match.group()):
        return _Decision.KEEP
    return _Decision.CUT


def _cuts(text: str, *, final: bool) -> list[int]:
    """Offsets where sentences end, in order. Not `final`: stop at the first boundary still undecided."""
    cuts: list[int] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if match.group() == "\n":
            if text[start : match.start()].strip():
                cuts.append(match.start())
                start = match.start()
            continue
        decision = _decide(text, start, match, final=final)
        if decision is _Decision.UNDECIDED:
            break
        if decision is _Decision.CUT:
            cuts.append(match.end())
            start = match.end()
    return cuts


def _pieces(text: str, cuts: list[int]) -> list[str]:
    """The stripped, non-empty pieces of `text` up to the last cut."""
    pieces: list[str] = []
    start = 0
    for cut in cuts:
        piece = text[start:cut].strip()
        if piece:
            pieces.append(piece)
        start = cut
    return pieces


def _close(fragment: str) -> str:
    """End a fragment with a period unless it already ends with sentence punctuation."""
    if _ENDS_WITH_TERMINAL.search(fragment):
        return fragment
    body = fragment.rstrip(_DANGLING)
    return f"{body}." if body else ""


def split_sentences(text: str) -> list[str]:
    """All sentences of a finished text, split by the same rules as `SentenceSplitter`."""
    cuts = _cuts(text, final=True)
    pieces = _pieces(text, cuts)
    tail = text[cuts[-1] if cuts else 0 :].strip()
    return [*pieces, tail] if tail else pieces


def trim_to_last_sentence(text: str) -> str:
    """Drop an unfinished trailing fragment, as left by a reply that hit `max_tokens`.

    Text with no complete sentence is kept whole with a period added, so TTS still gets a falling
    intonation rather than nothing.
    """
    body = text.strip()
    if not body:
        return ""
    cuts = _cuts(body, final=True)
    if cuts:
        body = body[: cuts[-1]].rstrip()
    return _close(body)


class SentenceSplitter:
    """Turns a stream of text deltas into whole sentences as soon as each one is certain.

    A sentence is released when the first non-space character after its punctuation arrives (the next
    token usually carries it as " The"), so TTS can start on it while the LLM goes on. Call `flush()` when
    the stream ends to get the last sentence.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, delta: str) -> list[str]:
        """Add a delta; return the sentences it completed (often none)."""
        self._pending += delta
        cuts = _cuts(self._pending, final=False)
        if not cuts:
            return []
        sentences = _pieces(self._pending, cuts)
        self._pending = self._pending[cuts[-1] :]
        return sentences

    def flush(self) -> str:
        """The text after the last released sentence, stripped (may be ""); the splitter is then empty."""
        rest, self._pending = self._pending.strip(), ""
        return rest
