"""Tool routing for small local models: decide from the meaning of the request whether a tool is needed.

Measured (FACTS): SmolLM2-135M with llama.cpp's function-calling format called the only tool for 4 of 5
requests that did not need it, and keyword routes written together with their test set got 10 of 15
unseen spoken requests right. So with the local model the decision is neither the LLM's nor a list of
keywords: each tool (and each handoff, by its tool name such as `transfer_to_support`) declares a `Route`
next to the agent definitions, with a few example requests. Requests are embedded with all-MiniLM-L6-v2
(`pipelines.agents.embedding`); a softmax regression over the embeddings is fitted at start-up on every
route's examples plus examples of requests that need no tool (`NO_TOOL_EXAMPLES` and the agents
module's own `no_tool_examples`), and the most probable available tool wins when its probability
clears `THRESHOLD`. The threshold is calibrated by `python -m bench.tools --calibrate` on a generated
set that shares no template with the examples (bench/data/), and reported on a split the calibration
never saw. (Nearest-example scoring with a no-tool margin was tried first: worst per-tool precision or
recall 0.87 on the calibration split, against 0.96 for the regression.)

`patterns` stay as an explicit override (a regex match routes without asking the encoder) and `exclude`
as a veto; both are declared next to the agent, so an operator can read why a request was routed.
A tool without a route is never called by the local model; a hosted model that does its own function
calling ignores the routes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pipelines.text.numbers import spoken_digits

Arguments = dict[str, Any]

#: Probability a tool needs to be called; calibrated on bench/data/tools_independent.jsonl (split
#: "calibration") with `python -m bench.tools --calibrate`.
THRESHOLD = 0.29
#: Softmax regression fit: plain gradient descent from zeros, so the same examples give the same weights.
_FIT_STEPS, _FIT_RATE, _FIT_L2 = 500, 5.0, 1e-3
#: Requests that need no tool, for every agent: small talk, knowledge questions, and look-alikes of the
#: shipped tools' requests. An agents module adds its own with `no_tool_examples`.
NO_TOOL_EXAMPLES = (
    "Hello, how are you today?",
    "Tell me a joke.",
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Why is the sky blue?",
    "Can you recommend a good book?",
    "What time is it?",
    "Thank you, that's all.",
    "Goodbye.",
    "Who wrote Romeo and Juliet?",
    "What's two plus two?",
    "Explain how photosynthesis works.",
    "Translate good morning into Spanish.",
    "Sing me a song.",
    "I'm feeling a bit under the weather.",
    "What is the meaning of the word whether?",
    "I'd like to order a pizza.",
    "Put these in alphabetical order.",
    "Do you support dark mode?",
    "What's your name?",
    "Set a timer for ten minutes.",
    "Play some music.",
    "What's a good recipe for dinner?",
    "How do I reset my password?",
)


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


def fit_softmax(x: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (weights, bias) by full-batch gradient descent; ~100 examples of
    384 dimensions take a few milliseconds."""
    weights = np.zeros((x.shape[1], classes), dtype=np.float64)
    bias = np.zeros(classes, dtype=np.float64)
    target = np.eye(classes)[labels]
    for _ in range(_FIT_STEPS):
        probs = softmax(x @ weights + bias)
        grad = (probs - target) / len(labels)
        weights -= _FIT_RATE * (x.T @ grad + _FIT_L2 * weights)
        bias -= _FIT_RATE * grad.sum(0)
    return weights, bias


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


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
        self._model: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def needs_encoder(self) -> bool:
        return bool(self._classes)

    def encoder(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                from pipelines.agents.embedding import shared_encoder

                self._encoder = shared_encoder()
            if self._model is None and self._classes:
                texts, labels = [], []
                for index, tool in enumerate(self._classes):
                    texts += self.routes[tool].examples
                    labels += [index] * len(self.routes[tool].examples)
                texts += self.no_tool_examples
                labels += [len(self._classes)] * len(self.no_tool_examples)
                vectors = self._encoder.encode([normalise_request(t) for t in texts]).astype(np.float64)
                self._model = fit_softmax(vectors, np.array(labels), len(self._classes) + 1)
            return self._encoder

    def warm(self) -> None:
        """Load the encoder and fit on the examples now (at worker start) rather than on the first turn."""
        if self.needs_encoder:
            self.encoder()

    def scores(self, text: str, available: Iterable[str]) -> dict[str, float]:
        """The probability that `text` needs each available routed tool."""
        allowed = set(available)
        if not self.needs_encoder:
            return {}
        vector = self.encoder().encode([normalise_request(text)])[0].astype(np.float64)
        assert self._model is not None
        probs = softmax(vector @ self._model[0] + self._model[1])
        return {t: float(probs[i]) for i, t in enumerate(self._classes) if t in allowed}

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
        """The most probable tool if it clears `threshold` (or its route's own) and is not vetoed."""
        if not scores:
            return None
        tool, score = max(scores.items(), key=lambda kv: kv[1])
        rule = self.routes[tool]
        bar = threshold if rule.threshold is None else rule.threshold
        if score >= bar and not rule.vetoed(text):
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


def answer_to_question(
    text: str, asked: str, router: Router | Mapping[str, Route], available: Iterable[str]
) -> RouteDecision | None:
    """The user answers the question a route asked last turn (`asked` is our previous reply): call that
    tool with what the answer supplies. This is how turn two depends on turn one."""
    routes = router.routes if isinstance(router, Router) else router
    allowed = set(available)
    for tool, rule in routes.items():
        if tool in allowed and rule.missing.strip() == asked.strip():
            reader = rule.followup or rule.arguments
            arguments = reader(text) if reader else None
            if arguments is not None:
                return RouteDecision(tool, arguments, rule.missing)
    return None
