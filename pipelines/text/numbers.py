"""Numbers as people say them and as Whisper writes them, read back as digit strings.

A caller reads an order number aloud in many shapes: "four two seven", "four hundred twenty-seven",
"ten forty-two" (digit groups, as phone numbers are read), "1 0 4 2", "#10-42". Whisper writes some of
them as digits, some as words, and hears "four" as "for" and "two" as "to". `read_number` turns a run of
such tokens into the digits that were meant: groups are concatenated ("ten forty-two" -> "1042"), while
a group that is one number ("four hundred twenty-seven") is added up.

Homophones ("for", "to", "too", "won", "ate", "oh") count as digits only inside a run that has a real
number word or digit after them, and only where the caller asks for them: "a table for two" is not an id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = {
    "zero": 0,
    "oh": 0,
    "o": 0,
    "nought": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
#: What Whisper writes for a digit it heard as another word.
HOMOPHONES = {"for": 4, "fore": 4, "to": 2, "too": 2, "won": 1, "ate": 8, "tree": 3}
_TOKEN = re.compile(r"[A-Za-z]+|\d+|#")


@dataclass(frozen=True)
class Token:
    text: str  # lower-cased word, or digits
    start: int
    end: int


def tokens(text: str) -> list[Token]:
    """Words and digit runs with their offsets; hyphens and punctuation separate ("twenty-seven")."""
    return [Token(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _small(words: list[str], j: int) -> tuple[int, int] | None:
    """Below one hundred: "twenty seven", "twelve", "four"; (value, next index)."""
    if j >= len(words):
        return None
    w = words[j]
    if w in TENS:
        if j + 1 < len(words) and words[j + 1] in UNITS and words[j + 1] not in ("o", "oh", "zero"):
            return TENS[w] + UNITS[words[j + 1]], j + 2
        return TENS[w], j + 1
    if w in TEENS:
        return TEENS[w], j + 1
    if w in UNITS and w not in ("o", "oh"):
        return UNITS[w], j + 1
    return None


def _skip_and(words: list[str], j: int) -> int:
    return j + 1 if j < len(words) and words[j] == "and" and _small(words, j + 1) else j


def _below_thousand(words: list[str], j: int) -> tuple[int, int] | None:
    """ "four hundred (and) twenty seven", or a small number."""
    small = _small(words, j)
    if small is None:
        return None
    value, j = small
    if j < len(words) and words[j] == "hundred":
        value, j = value * 100, _skip_and(words, j + 1)
        rest = _small(words, j)
        if rest is not None:
            value, j = value + rest[0], rest[1]
    return value, j


def _group(words: list[str], i: int) -> tuple[int, int] | None:
    """One spoken number starting at words[i]: (value, next index), e.g. "two thousand and forty two".

    A bare digit word ends its group ("four two" is two groups), so digit-by-digit ids read right.
    """
    head = _below_thousand(words, i)
    if head is None:
        return None
    value, j = head
    if j < len(words) and words[j] == "thousand":
        value, j = value * 1000, _skip_and(words, j + 1)
        rest = _below_thousand(words, j)
        if rest is not None:
            value, j = value + rest[0], rest[1]
    return value, j


def read_number(text: str, *, homophones: bool = False) -> tuple[str, int, int] | None:
    """The first run of spoken or written digits in `text`: (digits, start, end offsets), or None.

    Digit tokens and number words may mix ("order 4 two 7"); groups are concatenated.
    """
    toks = tokens(text)
    i = 0
    while i < len(toks):
        found = _run(toks, i, homophones)
        if found is not None:
            digits, j = found
            return digits, toks[i].start, toks[j - 1].end
        i += 1
    return None


def _real(word: str) -> bool:
    """A digit run or a number word that is never anything else ("oh" and scales excepted)."""
    return word.isdigit() or (word in UNITS and word not in ("o", "oh")) or word in TEENS or word in TENS


def _homophone_digit(words: list[str], j: int) -> bool:
    """A homophone is a digit only when a real number follows it, perhaps through more homophones."""
    k = j
    while k < len(words) and words[k] in HOMOPHONES:
        k += 1
    return k > j and k < len(words) and _real(words[k])


def _run(toks: list[Token], i: int, homophones: bool) -> tuple[str, int] | None:
    """Digits for the run of number tokens starting at toks[i], and the index after it."""
    words = [t.text for t in toks]
    double = words[i] == "double" and i + 1 < len(words) and words[i + 1] in UNITS
    if not (_real(words[i]) or double or (homophones and _homophone_digit(words, i))):
        return None
    parts: list[str] = []
    j = i
    while j < len(words):
        w = words[j]
        if w.isdigit():
            parts.append(w)
            j += 1
        elif homophones and w in HOMOPHONES and _homophone_digit(words, j):
            parts.append(str(HOMOPHONES[w]))
            j += 1
        elif w in ("oh", "o") and parts:
            parts.append("0")
            j += 1
        elif w == "double" and j + 1 < len(words) and words[j + 1] in UNITS:
            parts.append(str(UNITS[words[j + 1]]) * 2)
            j += 2
        elif _real(w):
            group = _group(words, j)
            if group is None:
                break
            value, j = group
            parts.append(str(value))
        else:
            break
    return ("".join(parts), j) if parts else None


def spoken_digits(text: str, *, homophones: bool = False) -> str:
    """`text` with each run of spoken digits written as digits ("order four two seven" -> "order 427")."""
    out: list[str] = []
    pos = 0
    toks = tokens(text)
    i = 0
    while i < len(toks):
        found = _run(toks, i, homophones)
        if found is None:
            i += 1
            continue
        digits, j = found
        out += [text[pos : toks[i].start], digits]
        pos = toks[j - 1].end
        i = j
    out.append(text[pos:])
    return "".join(out)
