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
def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_NOT_PLACE_WORDS = (
    _wordset(
        """
        today tomorrow tonight now right this next the a an morning afternoon evening night weekend week
        later soon please like and or but then is it will be going gonna there here outside currently at on
        in for that me my us so do does i you we need tell what how when weather forecast temperature
        degrees umbrella jacket coat rain raining snow sunny cold hot warm windy monday tuesday wednesday
        thursday friday saturday sunday celsius fahrenheit day days hours minutes moment time over around
        near to of looking look with by from get whole rest again also um uh oh well yes sure thanks thank
        showers shower storm storms humidity humid sunshine sky skies clouds cloudy wind chance climate
        outlook conditions chilly freezing winter summer spring autumn fall season january february
        march april may june july august september october november december
        """
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


def _leads_a_name(tokens: list[str], k: int) -> bool:
    """ "Los" of "Los Angeles", "la" of "la paz": a connector opens a name when a name word follows."""
    following = tokens[k + 1].rstrip(".") if k + 1 < len(tokens) else ""
    return following[:1].isalpha() and following.casefold() not in _NOT_PLACE_WORDS | _CONNECTORS


def _name_from(tokens: list[str], i: int) -> str | None:
    """Words from tokens[i] that can be a place name, up to the first word that cannot."""
    if i < len(tokens) and tokens[i].casefold() == "the":
        if i + 2 < len(tokens) and tokens[i + 1].casefold() == "city" and tokens[i + 2].casefold() == "of":
            i += 3
        elif i + 1 < len(tokens) and tokens[i + 1][0].isupper():
            i += 1  # "in the Hague" / "in the Bronx": keep going
    words: list[str] = []
    for k, token in enumerate(tokens[i:], start=i):
        word = token.rstrip(".")
        folded = word.casefold()
        if not word or not word[0].isalpha() or folded in _NOT_PLACE_WORDS:
            break
        if folded in _CONNECTORS and not words and not _leads_a_name(tokens, k):
            break
        words.append(word if folded not in _ABBREVIATIONS else word + ".")
        if token.endswith(".") and folded not in _ABBREVIATIONS:
            break
    return _clean_name(words)


#: Prepositions that also open other phrases far more often than a place ("remind me to call", "I want
#: to travel"): a lower-case word after them is a place only after a word of going somewhere ("flying to
#: sofia"); a capitalised one always is, as Whisper writes places.
_NAME_ONLY_AFTER = frozenset({"to"})
_GOING = _wordset(
    """
    fly flying flew flight flights travel travelling traveling trip trips go going headed heading head
    drive driving drove move moving moved visit visiting get getting way back return returning off
    """
)


def place_after_preposition(text: str) -> str | None:
    """A place after in/for/at/... ("weather in new york today?" -> "New York"), in any letter case:
    transcripts write "madrid" as often as "Madrid". After "to", a lower-case word is nearly always a
    verb ("remind me to call"), so it counts only after a word of going ("flying to sofia")."""
    tokens = _WORD.findall(text)
    found = []
    for i, token in enumerate(tokens):
        folded = token.casefold()
        if folded in _PREPOSITIONS:
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            going = i > 0 and tokens[i - 1].casefold() in _GOING
            if folded in _NAME_ONLY_AFTER and not (following[:1].isupper() or going):
                continue
            name = _name_from(tokens, i + 1)
            if name:
                found.append((_PREPOSITIONS.index(folded), i, name))
    return min(found)[2] if found else None


#: Curly apostrophes as some transcripts write them (U+2019): "What's" must stay one word, not "What" + "s".
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
#: What a reply wraps a place in: "It's Paris, please", "I said Madrid", "how about Rome then".
_ANSWER_LEAD = re.compile(
    r"^(?:(?:um+|uh+|er+|erm|oh|ah|well|okay|ok|so|yes|yeah|yep|sure|right|alright|sorry|no|actually|"
    r"it'?s|it is|that'?s|that is|i said|i'?m in|i am in|i'?m|i am|i meant|i mean|i'?d say|"
    r"how about|what about|make it|try|let'?s say|let'?s do|the city is|the city of|city of|"
    r"in|for|at|near|around)\b[\s,]*)+",
    re.IGNORECASE,
)
_ANSWER_TAIL = re.compile(
    r"(?:[\s,]+(?:please|thanks|thank you|then|today|tomorrow|tonight|now|right now|again|"
    r"this (?:morning|afternoon|evening|week|weekend)|for (?:today|tomorrow|tonight|the weekend)|"
    r"i think|i guess))+\s*$",
    re.IGNORECASE,
)
#: Words that make a reply something other than a place: questions, requests to repeat, refusals.
_NOT_ANSWER = _wordset(
    """
    what what's which who whom whose where where's why how how's whatever can could would should shall
    may might must did done say said repeat mean meant know sorry pardon huh hmm eh excuse nothing never
    mind nevermind forget cancel stop wait hold anything anywhere everywhere somewhere nowhere home yes
    no yeah yep nope okay ok cool great fine good nice hello hi hey bye goodbye it's that's i'm you're
    he she they them these those actually about not don't didn't can't isn't sure
    """
)
_ABBREVIATED = re.compile(r"\b(st|mt|ft|pt)\.(?=\s)", re.IGNORECASE)
_CLAUSES = re.compile(r"[?!,;:]+|\.(?=\s|$)")
_NAME_WORD = re.compile(r"[^\W\d_][\w'-]*")


def _place_clause(clause: str) -> str | None:
    """A clause that is only a place, perhaps wrapped in reply words ("it's new york, please")."""
    core = _ANSWER_TAIL.sub("", _ANSWER_LEAD.sub("", clause.strip())).strip()
    words = core.split()
    if words and words[0].casefold() == "the":  # "the Hague"
        words = words[1:]
    if not 1 <= len(words) <= 4:
        return None
    for k, word in enumerate(words):
        folded = word.casefold()
        if folded in _CONNECTORS and 0 < k < len(words) - 1:
            continue
        if not _NAME_WORD.fullmatch(word) or folded in _NOT_PLACE_WORDS or folded in _NOT_ANSWER:
            return None
    return _clean_name([w + "." if w.casefold() in _ABBREVIATIONS else w for w in words])


def place_in_answer(text: str) -> str | None:
    """The place a reply to "Which city?" names ("In Paris, please." / "paris." / "What? Oh, Rome."), or
    None when the reply is not a place ("What?", "What did you say?", "Can you repeat that?"). The whole
    of a clause must be the place: reading the first unknown word as one made "What's that?" a city."""
    text = _ABBREVIATED.sub(r"\1", text.translate(_APOSTROPHES))
    for clause in _CLAUSES.split(text):
        found = _place_clause(clause)
        if found:
            return found
    return None


#: A place as the subject of a weather question, in any case: "is havana going to be chilly tonight".
_SUBJECT = re.compile(
    r"\b(?:is|will|does|how's|how is|how will)\s+((?:[^\W\d_][\w'.-]*\s+){1,3}?)"
    r"(?:going|gonna|be|get|getting|look|looking|feel|feeling|stay|staying)\b",
    re.IGNORECASE,
)


def _place_as_subject(text: str) -> str | None:
    for match in _SUBJECT.finditer(text):
        words = match.group(1).split()
        if not any(w.casefold() in _NOT_PLACE_WORDS or w.casefold() in _NOT_ANSWER for w in words):
            return _clean_name(words)
    return None


def place_anywhere(text: str) -> str | None:
    """A place after a preposition, else the subject of the question ("will oslo be cold"), else a
    capitalised name that is not the first word ("Is Rome warm?")."""
    text = text.translate(_APOSTROPHES)
    found = place_after_preposition(text) or _place_as_subject(text)
    if found:
        return found
    tokens = _WORD.findall(text)
    for i, token in enumerate(tokens):
        folded = token.rstrip(".").casefold()
        if i and token[0].isupper() and folded not in _NOT_PLACE_WORDS and folded not in _NOT_ANSWER:
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


_QUESTION = re.compile(
    r"^\W*(?:what|which|who|where|why|how|when|can|could|would|will|do|does|did|is|are|should|tell)\b"
    r"(?!\s+about\b)",
    re.IGNORECASE,
)


def first_number(text: str) -> str | None:
    """The first number in an answer: "It's 10 42." / "four two seven" / "for two seven" -> digits;
    None for a question ("How do I find the number?"), which is not an answer."""
    text = text.translate(_APOSTROPHES)
    if _QUESTION.match(text):
        return None
    code = _CODE.search(text)
    if code and "-" in code.group(0):
        return (code.group(1) + code.group(2)).upper()
    found = read_number(text, homophones=True)
    return found[0] if found else None
