"""Spoken numbers as digits: digit by digit, grouped, compound, and Whisper's homophones."""

from __future__ import annotations

import pytest

from pipelines.text.numbers import read_number, spoken_digits


@pytest.mark.parametrize(
    ("text", "homophones", "digits"),
    [
        ("where is my order four two seven?", False, "427"),
        ("where it's my order for two seven.", True, "427"),
        ("order four hundred twenty-seven", False, "427"),
        ("order ten forty two", False, "1042"),
        ("order 10 42", False, "1042"),
        ("one oh four two", False, "1042"),
        ("two thousand and one", False, "2001"),
        ("twenty seven", False, "27"),
        ("nineteen ninety", False, "1990"),
        ("double seven three", False, "773"),
        ("Four Two Seven.", False, "427"),
    ],
)
def test_read_number(text: str, homophones: bool, digits: str) -> None:
    found = read_number(text, homophones=homophones)
    assert found is not None and found[0] == digits


def test_homophones_only_when_asked_and_only_before_a_number() -> None:
    assert read_number("a table for two") == ("2", 12, 15)
    assert read_number("I waited for an hour", homophones=True) is None
    assert read_number("seven two for", homophones=True)[0] == "72"


def test_spoken_digits_rewrites_runs_in_place() -> None:
    assert spoken_digits("my order is four two seven, thanks") == "my order is 427, thanks"
    assert spoken_digits("nothing to see") == "nothing to see"
