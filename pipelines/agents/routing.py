"""Tool routing for small local models: decide from the meaning of the request whether a tool is needed.

Measured (FACTS): SmolLM2-135M with llama.cpp's function-calling format called the only tool for 4 of 5
requests that did not need it, and keyword routes written together with their test set got 10 of 15
unseen spoken requests right. So with the local model the decision is neither the LLM's nor a list of
keywords: each tool (and each handoff, by its tool name such as `transfer_to_support`) declares a `Route`
next to the agent definitions, with a few example requests. Requests are embedded with all-MiniLM-L6-v2
(`pipelines.agents.embedding`); a softmax regression (`pipelines.agents.classifier`: the sentence vector,
the similarity to each class's nearest examples, and whether each tool's argument reader finds its
arguments) is fitted at start-up on every route's examples plus requests that need no tool
(`pipelines.agents.no_tool_examples` and the agents module's own `no_tool_examples`). The most probable
class wins; a tool is called when it is that class and its probability clears `THRESHOLD`, calibrated by
`python -m bench.tools --calibrate` on a generated split that shares neither a template nor an entity with
the split it is reported on (bench/tools_data.py). (Nearest-example scoring with a no-tool margin was
tried first: worst per-tool precision or recall 0.87 on the calibration split.)

`patterns` stay as an explicit override (a regex match routes without asking the encoder) and `exclude`
as a veto; both are declared next to the agent, so an operator can read why a request was routed.
A tool without a route is never called by the local model; a hosted model that does its own function
calling ignores the routes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pipelines.agents.classifier import ToolClassifier
from pipelines.agents.no_tool_examples import NO_TOOL_EXAMPLES
from pipelines.text.numbers import spoken_digits

Arguments = dict[str, Any]

#: Probability a tool needs to be called; calibrated with `python -m bench.tools --calibrate` on the
#: calibration split (bench/data/tools_independent.jsonl) as text and as piper's and espeak-ng's
#: transcripts (bench/data/tools_spoken_calibration.jsonl), Whisper prompted with the agent vocabulary:
#: plateau 0.20-0.62, its middle taken (0.39 on plateau 0.20-0.58 before the place-naming no-tool
#: examples; 0.36 before the prompt, plateau 0.20-0.51).
THRESHOLD = 0.41
#: Vectors of recent requests kept per router: the speculative and the final transcript of a turn are
#: often the same text, and a follow-up is checked against the routes before it is routed.
_CACHED_REQUESTS = 256


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Route:
    """When the local model calls one tool, and with what arguments."""

    #: Requests that need the tool, in the words a caller would use; the encoder compares with these.
    examples: tuple[str, ...] = ()
    #: Explicit override: a request matching one of these regexes routes here without the encoder.
    patterns: tuple[str, ...] = ()
    #: A veto: a request matching one of these never routes here, whatever it resembles.
    exclude: tuple[str, ...] = ()
    #: Reads the tool's arguments from the request; returning None means a required argument is missing.
    arguments: Callable[[str], Arguments | None] | None = None
    #: Said instead of calling the tool when `arguments` finds nothing (e.g. "Which city?").
    missing: str = "Could you tell me a little more?"
    #: Reads the arguments from the answer to `missing` ("It's 1042."); defaults to `arguments`.
    followup: Callable[[str], Arguments | None] | None = None
    #: Per-route similarity threshold; None takes the router's calibrated one.
    threshold: float | None = None
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _excluded: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(re.compile(p, re.IGNORECASE) for p in self.patterns))
        object.__setattr__(self, "_excluded", tuple(re.compile(p, re.IGNORECASE) for p in self.exclude))

    def forced(self, text: str) -> bool:
        return any(p.search(text) for p in self._compiled) and not self.vetoed(text)

    def vetoed(self, text: str) -> bool:
        return any(p.search(text) for p in self._excluded)

    def matches(self, text: str) -> bool:
        """Kept for callers of the keyword-only router: the override patterns alone."""
        return self.forced(text)


@dataclass(frozen=True)
class RouteDecision:
    tool: str
    arguments: Arguments | None  # None: the tool is needed but an argument is missing; ask for it
    missing: str = ""
    score: float = 1.0  # the classifier's probability (1.0: an override pattern matched)


_LEADING_FILLER = re.compile(
    r"^(?:\W*\b(?:hey|hi|hello|hi there|um+|uh+|er+|okay|ok|so|sorry|well|quick question|excuse me|"
    r"please)\b[\s,.!?-]*)+",
    re.IGNORECASE,
)
_TRAILING_FILLER = re.compile(r"(?:[\s,]*\b(?:please|thanks|thank you)\b[\s.!?]*)+$", re.IGNORECASE)


def normalise_request(text: str) -> str:
    """The request as the encoder should read it: spoken digits as digits ("order three three zero
    zero" -> "order 3300"; number words dilute a short sentence's meaning) and greetings and
    politeness at either end dropped (a transcript's "Um, okay so ..." says nothing about the tool)."""
    text = spoken_digits(text)
    stripped = _TRAILING_FILLER.sub("", _LEADING_FILLER.sub("", text.strip())).strip()
    return stripped or text


_example_vectors: dict[tuple[int, tuple[str, ...]], tuple[Encoder, np.ndarray]] = {}
_example_lock = threading.Lock()


def _embed_examples(encoder: Encoder, texts: tuple[str, ...]) -> np.ndarray:
    """Example vectors, once per process for the same encoder and texts (every registry of a process,
    and every test that loads the agents, fits on the same examples)."""
    key = (id(encoder), texts)
    with _example_lock:
        if key not in _example_vectors:
            _example_vectors[key] = (encoder, encoder.encode(list(texts)).astype(np.float64))
        return _example_vectors[key][1]


#: The key `Router.scores` gives the probability that no tool is needed under.
NO_TOOL = ""


class Router:
    """Routes of one agents module, with a classifier fitted on their examples once."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        encoder: Encoder | None = None,
        *,
        no_tool_examples: Sequence[str] = (),
        threshold: float = THRESHOLD,
    ) -> None:
        self.routes = dict(routes)
        self.threshold = threshold
        self.no_tool_examples = tuple(dict.fromkeys((*NO_TOOL_EXAMPLES, *no_tool_examples)))
        self._encoder: Encoder | None = encoder
        self._lock = threading.Lock()
        self._classes = [t for t, r in self.routes.items() if r.examples]
        self._model: ToolClassifier | None = None
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def needs_encoder(self) -> bool:
        return bool(self._classes)

    def encoder(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                from pipelines.agents.embedding import shared_encoder

                self._encoder = shared_encoder()
            if self._model is None and self._classes:
                self._model = self._fit(self._encoder)
            return self._encoder

    def _fit(self, encoder: Encoder) -> ToolClassifier:
        texts: list[str] = []
        labels: list[int] = []
        for index, tool in enumerate(self._classes):
            texts += self.routes[tool].examples
            labels += [index] * len(self.routes[tool].examples)
        texts += self.no_tool_examples
        labels += [len(self._classes)] * len(self.no_tool_examples)
        vectors = _embed_examples(encoder, tuple(normalise_request(t) for t in texts))
        readers = [r.arguments for t in self._classes if (r := self.routes[t]).arguments]
        return ToolClassifier(vectors, texts, np.array(labels), len(self._classes) + 1, readers)

    @property
    def ready(self) -> bool:
        """Whether the classifier is fitted (or not needed): the next request pays no load or fit."""
        return not self.needs_encoder or self._model is not None

    def warm(self) -> None:
        """Load the encoder and fit on the examples now (at worker start) rather than on the first turn."""
        if self.needs_encoder and self._model is None:
            self.encoder().encode(["warm up"])  # the first forward pass pays one-off allocation costs

    def vector(self, text: str) -> np.ndarray:
        """The request's sentence vector, from a small cache of recent requests."""
        key = normalise_request(text)
        with self._lock:
            found = self._recent.get(key)
            if found is not None:
                self._recent.move_to_end(key)
                return found
        found = self.encoder().encode([key])[0]
        with self._lock:
            self._recent[key] = found
            while len(self._recent) > _CACHED_REQUESTS:
                self._recent.popitem(last=False)
        return found

    def scores(self, text: str, available: Iterable[str]) -> dict[str, float]:
        """The probability that `text` needs each available routed tool, and under `NO_TOOL` that it
        needs none."""
        allowed = set(available)
        if not self.needs_encoder:
            return {}
        vector = self.vector(text)
        assert self._model is not None
        probs = self._model.probabilities(vector, text)
        found = {t: float(probs[i]) for i, t in enumerate(self._classes) if t in allowed}
        return found | {NO_TOOL: float(probs[-1])}

    def choose(self, text: str, available: Iterable[str]) -> tuple[str, float] | None:
        """The tool `text` needs, or None: overrides first, then the classifier's best above the bar."""
        allowed = [t for t in self.routes if t in set(available)]
        for tool in allowed:
            if self.routes[tool].forced(text):
                return tool, 1.0
        if not self.needs_encoder or not text.strip():
            return None
        return self.decide(text, self.scores(text, allowed), self.threshold)

    def decide(self, text: str, scores: Mapping[str, float], threshold: float) -> tuple[str, float] | None:
        """The most probable tool if it is more probable than no tool, clears `threshold` (or its
        route's own) and is not vetoed."""
        tools = {t: p for t, p in scores.items() if t != NO_TOOL}
        if not tools:
            return None
        tool, score = max(tools.items(), key=lambda kv: kv[1])
        rule = self.routes[tool]
        bar = threshold if rule.threshold is None else rule.threshold
        if score >= bar and score >= scores.get(NO_TOOL, 0.0) and not rule.vetoed(text):
            return tool, score
        return None


def route(text: str, router: Router | Mapping[str, Route], available: Iterable[str]) -> RouteDecision | None:
    """The tool the request needs among `available`, with its arguments, or None (the model replies)."""
    router = router if isinstance(router, Router) else Router(router)
    chosen = router.choose(text, available)
    if chosen is None:
        return None
    tool, score = chosen
    rule = router.routes[tool]
    arguments = rule.arguments(text) if rule.arguments else {}
    return RouteDecision(tool, arguments, rule.missing, score)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.casefold().replace("\u2019", "'"))


def asked_for(missing: str, asked: str) -> bool:
    """Whether our previous reply was the route's question: the same words, or the start of them when
    the caller cut the question short by answering (the history keeps only what was heard)."""
    want, said = _words(missing), _words(asked)
    return bool(said) and (said == want or (len(said) >= 2 and want[: len(said)] == said))


def answer_to_question(
    text: str, asked: str, router: Router | Mapping[str, Route], available: Iterable[str]
) -> RouteDecision | None:
    """The user answers the question a route asked last turn (`asked` is our previous reply): call that
    tool with what the answer supplies. This is how turn two depends on turn one.

    None, so that the turn is routed as a new request, when the reply supplies nothing (the readers
    refuse "What?" or "Can you repeat that?") or is a request for another tool ("Actually, where is
    my order 1042?" after "Which city?")."""
    routes = router.routes if isinstance(router, Router) else router
    allowed = [t for t in routes if t in set(available)]
    for tool in allowed:
        rule = routes[tool]
        if not asked_for(rule.missing, asked):
            continue
        reader = rule.followup or rule.arguments
        arguments = reader(text) if reader else None
        if arguments is None:
            return None
        if isinstance(router, Router):
            other = router.choose(text, allowed)
            if other is not None and other[0] != tool:
                return None
        return RouteDecision(tool, arguments, rule.missing)
    return None
