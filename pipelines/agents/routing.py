"""Tool routing for small local models: decide from the words of the request whether a tool is needed.

Measured (FACTS): SmolLM2-135M with llama.cpp's function-calling format called the only tool for 4 of 5
requests that did not need it. So with the local model the decision is not the model's: each tool (and
each handoff, by its tool name such as `transfer_to_support`) may declare a `Route` next to the agent
definitions. A route says which phrasings need the tool, which phrasings look alike but do not
(`exclude`), and how to read the arguments out of the request. A tool without a route is never called by
the local model; a hosted model that does its own function calling ignores the routes.

Why patterns rather than an embedding model: the bench (`bench/tools.py`) reaches precision and recall
1.0 on its labelled set with no extra dependency and sub-millisecond cost, and the arguments (a city, an
order number) have to be extracted from the words anyway; the embedding packages pull in torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Arguments = dict[str, Any]


@dataclass(frozen=True)
class Route:
    """When the local model calls one tool, and with what arguments."""

    patterns: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    #: Reads the tool's arguments from the request; returning None means a required argument is missing.
    arguments: Callable[[str], Arguments | None] | None = None
    #: Said instead of calling the tool when `arguments` finds nothing (e.g. "Which city?").
    missing: str = "Could you tell me a little more?"
    #: Reads the arguments from the answer to `missing` ("It's 1042."); defaults to `arguments`.
    followup: Callable[[str], Arguments | None] | None = None
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _excluded: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(re.compile(p, re.IGNORECASE) for p in self.patterns))
        object.__setattr__(self, "_excluded", tuple(re.compile(p, re.IGNORECASE) for p in self.exclude))

    def matches(self, text: str) -> bool:
        return any(p.search(text) for p in self._compiled) and not any(p.search(text) for p in self._excluded)


@dataclass(frozen=True)
class RouteDecision:
    tool: str
    arguments: Arguments | None  # None: the tool is needed but an argument is missing; ask for it
    missing: str = ""


def route(text: str, routes: Mapping[str, Route], available: Iterable[str]) -> RouteDecision | None:
    """The first available tool (in the order routes are declared) whose route matches, or None."""
    allowed = set(available)
    for tool, rule in routes.items():
        if tool in allowed and rule.matches(text):
            arguments = rule.arguments(text) if rule.arguments else {}
            return RouteDecision(tool, arguments, rule.missing)
    return None


def answer_to_question(
    text: str, asked: str, routes: Mapping[str, Route], available: Iterable[str]
) -> RouteDecision | None:
    """The user answers the question a route asked last turn (`asked` is our previous reply): call that
    tool with what the answer supplies. This is how turn two depends on turn one."""
    allowed = set(available)
    for tool, rule in routes.items():
        if tool in allowed and rule.missing.strip() == asked.strip():
            reader = rule.followup or rule.arguments
            arguments = reader(text) if reader else None
            if arguments is not None:
                return RouteDecision(tool, arguments, rule.missing)
    return None


# --- argument readers for common shapes ----------------------------------------------------------------

_PLACE = r"([A-Z][\w'.-]*(?:[ -](?:[A-Z][\w'.-]*|de|del|la|upon|on))*)"
_PLACE_AFTER = re.compile(r"\b(?:in|for|at|of|to)\s+(?:the\s+city\s+of\s+)?" + _PLACE)
_NOT_PLACES = frozenset(
    {
        "I",
        "Today",
        "Tomorrow",
        "Tonight",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "The",
        "My",
        "This",
        "Weekend",
    }
)


def place_after_preposition(text: str) -> str | None:
    """A capitalised place name after in/for/at/of/to ("weather in New York"), as transcripts write it."""
    for match in _PLACE_AFTER.finditer(text):
        words = [w for w in match.group(1).split() if w not in _NOT_PLACES]
        if words and words[0][0].isupper():
            return " ".join(words).rstrip(".?!,")
    return None


def number_after(keyword: str) -> Callable[[str], str | None]:
    """A reader for "order 1042" / "order number 10 42" / "order #A-1042": digits after `keyword`."""
    pattern = re.compile(
        rf"\b{keyword}\w*\b[^0-9A-Za-z]*(?:(?:number|no\.?|id)\s*)?#?\s*"
        r"([A-Z]{0,3}-?\d[\d -]{0,14}\d|\d)",
        re.IGNORECASE,
    )

    def read(text: str) -> str | None:
        match = pattern.search(text)
        if match is None:
            return None
        return re.sub(r"[\s-]", "", match.group(1)).upper()

    return read


_DIGITS = re.compile(r"\b([A-Z]{0,3}-?\d[\d -]{0,14}\d|\d)\b", re.IGNORECASE)


def first_number(text: str) -> str | None:
    """The first number in an answer such as "It's 10 42." -> "1042"."""
    match = _DIGITS.search(text)
    return re.sub(r"[\s-]", "", match.group(1)).upper() if match else None


_CAPITALISED = re.compile(r"\b([A-Z][a-z][\w'.-]*(?: [A-Z][a-z][\w'.-]*)*)")
_FILLER = frozenset({"It", "In", "The", "For", "At", "Please", "I", "Um", "Uh", "Oh", "Well", "Yes", "Sure"})


def place_in_answer(text: str) -> str | None:
    """A place named in an answer ("In Paris, please." / "Paris.")."""
    found = place_after_preposition(text)
    if found:
        return found
    for match in _CAPITALISED.finditer(text):
        words = [w for w in match.group(1).split() if w not in _FILLER and w not in _NOT_PLACES]
        if words:
            return " ".join(words).rstrip(".?!,")
    return None
