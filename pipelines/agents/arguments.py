"""Argument readers for routes: a place or an order number, from words as a transcript writes them.

Transcripts are not typed text: "madrid" comes in lower case, "four" as "for", numbers as words
("four hundred twenty-seven", "ten forty-two"), with Whisper's own punctuation. These readers are what a
`Route` uses to fill a tool's arguments (`pipelines.agents.examples` shows them in use).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pipelines.text.numbers import TEENS, TENS, UNITS, read_number

_WORD = re.compile(r"[A-Za-z\u00C0-\u024F][\w'\u00C0-\u024F.-]*|[^\s\w]+|\d+")
#: Prepositions before a place, most telling first: "going to pour down in Amsterdam" is about Amsterdam.
_PREPOSITIONS = ("in", "at", "near", "around", "above", "over", "across", "for", "of", "to")
#: Words that end (or are never part of) a place name: times, fillers, and the words of weather requests.
_NOT_PLACE_WORDS = (
    frozenset(
        [
            "today",
            "tomorrow",
            "tonight",
            "now",
            "right",
            "this",
            "next",
            "the",
            "a",
            "an",
            "morning",
            "afternoon",
            "evening",
            "night",
            "weekend",
            "week",
            "later",
            "soon",
            "please",
            "like",
            "and",
            "or",
            "but",
            "then",
            "is",
            "it",
            "will",
            "be",
            "going",
            "gonna",
            "there",
            "here",
            "outside",
            "currently",
            "at",
            "on",
            "in",
            "for",
            "that",
            "me",
            "my",
            "us",
            "so",
            "do",
            "does",
            "i",
            "you",
            "we",
            "need",
            "tell",
            "what",
            "how",
            "when",
            "weather",
            "forecast",
            "temperature",
            "degrees",
            "umbrella",
            "jacket",
            "coat",
            "rain",
            "raining",
            "snow",
            "sunny",
            "cold",
            "hot",
            "warm",
            "windy",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
            "celsius",
            "fahrenheit",
            "day",
            "days",
            "hours",
            "minutes",
            "moment",
            "time",
            "over",
            "around",
            "near",
            "to",
            "of",
            "looking",
            "look",
            "with",
            "by",
            "from",
            "going",
            "get",
            "whole",
            "rest",
            "again",
            "also",
            "um",
            "uh",
            "oh",
            "well",
            "yes",
            "sure",
            "thanks",
            "thank",
            "showers",
            "shower",
            "storm",
            "storms",
            "rain",
            "snow",
            "humidity",
            "humid",
            "sunshine",
            "sky",
            "skies",
            "clouds",
            "cloudy",
            "wind",
            "chance",
            "climate",
            "outlook",
            "conditions",
            "chilly",
            "freezing",
        ]
    )
    | frozenset(UNITS)
    | frozenset(TEENS)
    | frozenset(TENS)
)
_ABBREVIATIONS = frozenset({"st", "ft", "mt", "pt"})
_CONNECTORS = frozenset({"de", "del", "la", "le", "upon", "am", "sur", "da", "do", "dos", "los", "las"})


def _clean_name(words: list[str]) -> str | None:
    while words and words[-1].casefold() in _CONNECTORS:
        words = words[:-1]
    if not words or len(words) > 4:
        return None
    return " ".join(
        w if any(c.isupper() for c in w) or (k and w in _CONNECTORS) else w.capitalize()
        for k, w in enumerate(words)
    )


def _name_from(tokens: list[str], i: int) -> str | None:
    """Words from tokens[i] that can be a place name, up to the first word that cannot."""
    if i < len(tokens) and tokens[i].casefold() == "the":
        if i + 2 < len(tokens) and tokens[i + 1].casefold() == "city" and tokens[i + 2].casefold() == "of":
            i += 3
        elif i + 1 < len(tokens) and tokens[i + 1][0].isupper():
            i += 1  # "in the Hague" / "in the Bronx": keep going
    words: list[str] = []
    for token in tokens[i:]:
        word = token.rstrip(".")
        folded = word.casefold()
        if not word or not word[0].isalpha() or folded in _NOT_PLACE_WORDS:
            break
        if folded in _CONNECTORS and not words:
            break
        words.append(word if folded not in _ABBREVIATIONS else word + ".")
        if token.endswith(".") and folded not in _ABBREVIATIONS:
            break
    return _clean_name(words)


def place_after_preposition(text: str) -> str | None:
    """A place after in/for/at/... ("weather in new york today?" -> "New York"), in any letter case:
    transcripts write "madrid" as often as "Madrid"."""
    tokens = _WORD.findall(text)
    found = []
    for i, token in enumerate(tokens):
        if token.casefold() in _PREPOSITIONS:
            name = _name_from(tokens, i + 1)
            if name:
                found.append((_PREPOSITIONS.index(token.casefold()), i, name))
    return min(found)[2] if found else None


_FILLER = frozenset({"it", "it's", "its", "in", "the", "for", "at", "please", "i", "um", "uh", "oh", "well"})


def place_in_answer(text: str) -> str | None:
    """A place named in an answer ("In Paris, please." / "paris." / "It's Rome.")."""
    found = place_after_preposition(text)
    if found:
        return found
    tokens = [t for t in _WORD.findall(text) if t.casefold() not in _FILLER]
    for i, token in enumerate(tokens):
        if token[0].isalpha() and token.casefold() not in _NOT_PLACE_WORDS:
            return _name_from(tokens, i)
    return None


def place_anywhere(text: str) -> str | None:
    """A place after a preposition, else a capitalised name that is not the first word ("Is Rome warm?")."""
    found = place_after_preposition(text)
    if found:
        return found
    tokens = _WORD.findall(text)
    for i, token in enumerate(tokens):
        if i and token[0].isupper() and token.rstrip(".").casefold() not in _NOT_PLACE_WORDS:
            return _name_from(tokens, i)
    return None


_CODE = re.compile(r"#?\s*([A-Z]{1,3})-?(\d{1,12})\b")


def number_after(keyword: str, *, within: int = 60) -> Callable[[str], str | None]:
    """A reader for an id said after `keyword`: "order 1042", "order number ten forty-two", "order for
    two seven" (Whisper's "for" for "four"), "order #A-1042". Looks `within` characters past the keyword."""
    key = re.compile(rf"\b{keyword}\w*\b", re.IGNORECASE)

    def read(text: str) -> str | None:
        for match in key.finditer(text):
            tail = text[match.end() : match.end() + within]
            tail = re.sub(r"^\W*(?:(?:number|no\.?|id|is)\W+)*", "", tail, flags=re.IGNORECASE)
            code = _CODE.match(tail)
            if code and "-" in code.group(0):  # "A-1042": letters belong to the id only with a hyphen
                return (code.group(1) + code.group(2)).upper()
            found = read_number(tail, homophones=True)
            if found is not None:
                return found[0]
        return None

    return read


def first_number(text: str) -> str | None:
    """The first number in an answer: "It's 10 42." / "four two seven" / "for two seven" -> digits."""
    code = _CODE.search(text)
    if code and "-" in code.group(0):
        return (code.group(1) + code.group(2)).upper()
    found = read_number(text, homophones=True)
    return found[0] if found else None
