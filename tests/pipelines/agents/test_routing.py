"""Tool choice on phrasings the routes never saw, arguments as speech delivers them, and the bench sets.

The router runs as in production: the bundled all-MiniLM-L6-v2 (numpy) over the shipped agents' routes.
"""

from __future__ import annotations

import pytest

from bench.tools import INDEPENDENT, SPOKEN, load, predict_routes, report, worst
from bench.tools_data import build, check_separated
from pipelines.agents.arguments import (
    first_number,
    number_after,
    place_after_preposition,
    place_anywhere,
    place_in_answer,
)
from pipelines.agents.embedding import shared_encoder
from pipelines.agents.registry import load_agents
from pipelines.agents.routing import Route, Router, answer_to_question, asked_for, route

SPEC = "pipelines.agents.examples:agents"


@pytest.fixture(scope="module")
def registry():
    registry = load_agents(SPEC, default="Assistant")
    registry.router.warm()
    return registry


ASSISTANT = ["get_weather", "get_order_status", "transfer_to_support"]


@pytest.mark.parametrize(
    ("text", "tool", "arguments"),
    [
        # the misses, as Whisper wrote them
        ("How warm will it be in Madrid tomorrow afternoon?", "get_weather", {"city": "Madrid"}),
        ("how warm will it be in madrid tomorrow afternoon", "get_weather", {"city": "Madrid"}),
        ("where it's my order for two seven.", "get_order_status", {"order_id": "427"}),
        ("Where is my order four two seven?", "get_order_status", {"order_id": "427"}),
        ("Can you put me through to a person, please?", "transfer_to_support", {}),
        # more phrasings that are neither examples nor bench templates
        ("Is it going to pour down in Amsterdam on Friday?", "get_weather", {"city": "Amsterdam"}),
        (
            "what's the status on order number four hundred twenty-seven",
            "get_order_status",
            {"order_id": "427"},
        ),
        ("I'd like to speak to somebody real.", "transfer_to_support", {}),
        # Whisper's "order of" before the number; "order of" before a noun stays no purchase
        (
            "Hi, I am calling about my order of 5512, has it shipped?",
            "get_order_status",
            {"order_id": "5512"},
        ),
        ("what is the order of the colours in a rainbow", None, None),
        ("What is the capital of Italy?", None, None),
        ("Write me a short poem about the ocean.", None, None),
        ("How many moons does Jupiter have?", None, None),
        # a place, a reminder or a call without a weather request or a wish to be put through
        ("Remind me to call my mother tomorrow.", None, None),
        ("How do I get to Boston from here?", None, None),
        ("What do people do in winter?", None, None),
    ],
)
def test_held_out_phrasings(registry, text: str, tool: str | None, arguments: dict | None) -> None:
    decision = route(text, registry.router, ASSISTANT)
    got = (decision.tool, decision.arguments) if decision else (None, None)
    assert got == (tool, arguments)


def test_independent_test_split_per_tool(registry, capsys) -> None:
    """The held-out split (templates and entities the threshold never saw) meets the issue's 0.95 goal
    per tool (measured 1.00; see the README's Agents section)."""
    rows = load(INDEPENDENT, "test")
    table = report(rows, predict_routes(rows, SPEC, router=registry.router), show_misses=False)
    assert worst(table) >= 0.95, table
    assert min(s["arguments"] for s in table.values()) >= 0.95, table


@pytest.mark.parametrize(("voice", "goal"), [("piper", 0.85), ("espeak-ng", 0.80)])
def test_transcripts_of_the_test_split(registry, capsys, voice: str, goal: float) -> None:
    """Whisper's transcripts of the test split (prompted with the Assistant's vocabulary), from the
    bench's cache (no speech is synthesised here): regression guards below the measured piper 0.88 and
    espeak-ng 0.83 (the goal is 0.90; unprompted espeak-ng was 0.75)."""
    rows = [r for r in load(SPOKEN) if r["voice"] == voice]
    assert {r["written"] for r in rows} == {r["text"] for r in load(INDEPENDENT, "test")}
    table = report(rows, predict_routes(rows, SPEC, router=registry.router), show_misses=False)
    assert worst(table) >= goal, table


def test_calibration_and_test_share_no_template_and_no_entity() -> None:
    rows = load(INDEPENDENT)
    check_separated(rows)
    assert rows == build()  # the file is what the generator writes (test rows as first generated)
    assert {r["split"] for r in rows} == {"calibration", "test"}


def test_argument_readers() -> None:
    assert place_after_preposition("weather in New York today?") == "New York"
    assert place_after_preposition("the weather for rio de janeiro") == "Rio de Janeiro"
    assert place_after_preposition("weather in the morning") is None
    assert place_after_preposition("is it raining in SAN FRANCISCO right now") == "SAN FRANCISCO"
    assert place_after_preposition("forecast for st. louis this weekend.") == "St. Louis"
    # after "to" a lower-case word is a verb, not a place; seasons and months are times, not places
    assert place_after_preposition("remind me to call my mother") is None
    assert place_after_preposition("I want to travel") is None
    assert place_after_preposition("flying to Lisbon on Friday") == "Lisbon"
    assert place_after_preposition("what do people do in winter") is None
    assert place_after_preposition("is it cold in march") is None
    assert place_in_answer("paris, please.") == "Paris"
    read = number_after("order")
    assert read("order number 10 42, where is it") == "1042"
    assert read("track order #A-77") == "A77"
    assert read("where is my order?") is None
    assert read("my order is ten forty-two") == "1042"


def test_only_available_tools_are_chosen_and_missing_arguments_ask() -> None:
    routes = {"lookup": Route(patterns=(r"\blook up\b",), arguments=lambda t: None, missing="Which one?")}
    assert route("please look up this", routes, available=[]) is None
    decision = route("please look up this", routes, available=["lookup"])
    assert decision is not None and decision.arguments is None and decision.missing == "Which one?"


def test_a_veto_wins_over_resemblance(registry) -> None:
    assert route("I'm feeling a little under the weather in Paris.", registry.router, ASSISTANT) is None
    assert route("Where is the weather in Paris?", registry.router, []) is None


def test_routes_without_examples_need_no_encoder() -> None:
    router = Router({"lookup": Route(patterns=(r"\blook up\b",))})
    assert not router.needs_encoder and router.choose("hello", ["lookup"]) is None


ASKED_CITY = "Which city would you like the weather for?"
#: Replies to "Which city?" that name no place: the follow-up must not read a city out of them.
NOT_A_PLACE = [
    "What?",
    "What did you say?",
    "What's that?",
    "What\u2019s that?",
    "Sorry, what?",
    "What city?",
    "Can you repeat that?",
    "Huh?",
    "No, never mind.",
    "What do you mean?",
    "What's the capital of France?",
    "Actually, where is my order 1042?",
]


@pytest.mark.parametrize("reply", NOT_A_PLACE)
def test_a_reply_that_names_no_place_gives_no_city(registry, reply: str) -> None:
    assert place_in_answer(reply) is None
    decision = answer_to_question(reply, ASKED_CITY, registry.router, ASSISTANT)
    decision = decision or route(reply, registry.router, ASSISTANT)
    assert decision is None or decision.tool != "get_weather" or decision.arguments is None, decision


@pytest.mark.parametrize(
    ("reply", "city"),
    [
        ("In Paris, please.", "Paris"),
        ("paris.", "Paris"),
        ("It's new york city, thanks.", "New York City"),
        ("What? Oh, Rome.", "Rome"),
        ("How about Los Angeles?", "Los Angeles"),
        ("I said Madrid", "Madrid"),
        ("rio de janeiro", "Rio de Janeiro"),
        ("St. Louis.", "St. Louis"),
    ],
)
def test_a_reply_that_names_a_place_fills_the_call(registry, reply: str, city: str) -> None:
    decision = answer_to_question(reply, ASKED_CITY, registry.router, ASSISTANT)
    assert decision is not None and (decision.tool, decision.arguments) == ("get_weather", {"city": city})


def test_a_new_request_after_the_question_is_routed_as_one(registry) -> None:
    reply = "Actually, where is my order 1042?"
    assert answer_to_question(reply, ASKED_CITY, registry.router, ASSISTANT) is None
    decision = route(reply, registry.router, ASSISTANT)
    assert decision is not None and decision.arguments == {"order_id": "1042"}


def test_a_question_cut_short_by_the_answer_still_counts() -> None:
    assert asked_for(ASKED_CITY, "Which city would")  # the history keeps only what was heard
    assert asked_for(ASKED_CITY, "which city would you like the weather for")
    assert not asked_for(ASKED_CITY, "Which")
    assert not asked_for(ASKED_CITY, "In Paris it is sunny.")


def test_question_words_are_never_arguments() -> None:
    assert place_anywhere("Quick question. What's it like outside at the moment?") is None
    assert place_anywhere("is havana going to be chilly tonight") == "Havana"
    assert place_anywhere("Give me the weather in Los Angeles.") == "Los Angeles"
    assert first_number("How do I find the number, is it 1042?") is None
    assert first_number("It's ten forty-two.") == "1042"


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self.inner, self.texts = shared_encoder(), 0

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return self.inner.encode(texts)


def test_the_same_text_is_embedded_once_and_warm_fits_once(registry) -> None:
    """A turn's speculative and final transcript are often the same text; a follow-up is checked
    against the routes and then routed: the request is embedded once."""
    encoder = CountingEncoder()
    router = Router(registry.routes, encoder, no_tool_examples=registry.no_tool_examples)
    router.warm()
    after_warm = encoder.texts
    router.warm()
    assert encoder.texts == after_warm
    first = route("How warm will it be in Lima tonight?", router, ASSISTANT)
    again = route("How warm will it be in Lima tonight?", router, ASSISTANT)
    assert first == again and first is not None and first.arguments == {"city": "Lima"}
    assert encoder.texts == after_warm + 1
