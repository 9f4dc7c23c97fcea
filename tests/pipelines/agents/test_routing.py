"""Routes decide tool use for the local model; the labelled bench set must stay at >= 0.95 per tool."""

from __future__ import annotations

from bench.tools import load, predict_routes, report
from pipelines.agents.routing import Route, number_after, place_after_preposition, route


def test_bench_precision_and_recall_per_tool(capsys) -> None:
    rows = load()
    assert len(rows) >= 60
    table = report(rows, predict_routes(rows, "pipelines.agents.examples:agents"))
    for tool, scores in table.items():
        assert scores["precision"] >= 0.95 and scores["recall"] >= 0.95, (tool, scores)
        assert scores["arguments"] >= 0.95, (tool, scores)


def test_argument_readers() -> None:
    assert place_after_preposition("weather in New York today?") == "New York"
    assert place_after_preposition("the weather for Rio de Janeiro") == "Rio de Janeiro"
    assert place_after_preposition("weather in the morning") is None
    read = number_after("order")
    assert read("order number 10 42, where is it") == "1042"
    assert read("track order #A-77") == "A77"
    assert read("where is my order?") is None


def test_only_available_tools_are_chosen_and_missing_arguments_ask() -> None:
    routes = {"lookup": Route(patterns=(r"\blook up\b",), arguments=lambda t: None, missing="Which one?")}
    assert route("please look up this", routes, available=[]) is None
    decision = route("please look up this", routes, available=["lookup"])
    assert decision is not None and decision.arguments is None and decision.missing == "Which one?"
