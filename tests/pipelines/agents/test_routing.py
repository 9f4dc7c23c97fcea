"""Tool choice on phrasings the routes never saw, arguments as speech delivers them, and the bench sets.

The router runs as in production: the bundled all-MiniLM-L6-v2 (numpy) over the shipped agents' routes.
"""

from __future__ import annotations

import pytest

from bench.tools import INDEPENDENT, load, predict_routes, report, worst
from pipelines.agents.arguments import number_after, place_after_preposition, place_in_answer
from pipelines.agents.registry import load_agents
from pipelines.agents.routing import Route, Router, route

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
        ("What is the capital of Italy?", None, None),
        ("Write me a short poem about the ocean.", None, None),
        ("How many moons does Jupiter have?", None, None),
    ],
)
def test_held_out_phrasings(registry, text: str, tool: str | None, arguments: dict | None) -> None:
    decision = route(text, registry.router, ASSISTANT)
    got = (decision.tool, decision.arguments) if decision else (None, None)
    assert got == (tool, arguments)


def test_independent_test_split_per_tool(registry, capsys) -> None:
    """The held-out split (templates the threshold never saw): a regression guard below the 0.95 goal,
    which bench/tools.py reports (see the README's Agents section for the measured table)."""
    rows = load(INDEPENDENT, "test")
    table = report(rows, predict_routes(rows, SPEC, router=registry.router), show_misses=False)
    assert worst(table) >= 0.8, table
    assert min(s["arguments"] for s in table.values()) >= 0.75, table


def test_argument_readers() -> None:
    assert place_after_preposition("weather in New York today?") == "New York"
    assert place_after_preposition("the weather for rio de janeiro") == "Rio de Janeiro"
    assert place_after_preposition("weather in the morning") is None
    assert place_after_preposition("is it raining in SAN FRANCISCO right now") == "SAN FRANCISCO"
    assert place_after_preposition("forecast for st. louis this weekend.") == "St. Louis"
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
