"""Sentence splitting and trimming: no models, runs in milliseconds."""

from __future__ import annotations

import random

import pytest

from pipelines.text.sentences import SentenceSplitter, split_sentences, trim_to_last_sentence

SAMPLES = [
    "Dr. Smith paid $48.50 today. It was 3.5 times more! Really? Yes.",
    "Here are three tips:\n1. Drink water.\n2. Sleep well.\n3. Walk daily.",
    'He said "Stop." Then he left. Mrs. Jones (the neighbour) waved.',
    "J. R. R. Tolkien wrote it. I read it e.g. twice. Well... maybe not. Call me at 5 p.m. today.",
    "The U.S. team won. Pi is about 3.14159! Is that right?",
    "No punctuation at all",
    "",
    "   ",
]


def _stream(text: str, cuts: list[int]) -> list[str]:
    """Feed `text` in pieces split at `cuts`, the way LLM deltas arrive, and collect every sentence."""
    splitter = SentenceSplitter()
    sentences: list[str] = []
    start = 0
    for cut in [*cuts, len(text)]:
        sentences.extend(splitter.feed(text[start:cut]))
        start = cut
    tail = splitter.flush()
    return [*sentences, tail] if tail else sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Dr. Smith is in. He paid $48.50.", ["Dr. Smith is in.", "He paid $48.50."]),
        ("It costs 3.5 dollars. Fine!", ["It costs 3.5 dollars.", "Fine!"]),
        ("Wait... what? No!", ["Wait... what?", "No!"]),
        ('She said "Go." Then she left.', ['She said "Go."', "Then she left."]),
        ("Tips:\n1. Drink water.\n2. Sleep.", ["Tips:", "1. Drink water.", "2. Sleep."]),
        ("Use e.g. Paris. Or i.e. Lyon.", ["Use e.g. Paris.", "Or i.e. Lyon."]),
        ("J. K. Rowling wrote it. Done.", ["J. K. Rowling wrote it.", "Done."]),
        ("Meet St. Louis. Then Mr. Brown.", ["Meet St. Louis.", "Then Mr. Brown."]),
        ("Version 2.0.1 is out. Update now.", ["Version 2.0.1 is out.", "Update now."]),
        ("...and then it rained. Oh.", ["...and then it rained.", "Oh."]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paris is lovely. The weather today is", "Paris is lovely."),
        ("It costs $48.50 in total. Then you pay $3.", "It costs $48.50 in total. Then you pay $3."),
        ("It costs $48.50 in total. Then you pay $3.5", "It costs $48.50 in total."),
        ("Ask Dr. Smith. He knows Dr.", "Ask Dr. Smith."),
        ("The weather in Paris is", "The weather in Paris is."),
        ("The weather in Paris is,", "The weather in Paris is."),
        ("Really? I think so! And then", "Really? I think so!"),
        ('He said "Go." And then', 'He said "Go."'),
        ("Tips:\n1. Drink water.\n2. Sle", "Tips:\n1. Drink water."),
        ("Pi is 3.14", "Pi is 3.14."),
        ("Is it raining? No.", "Is it raining? No."),
        ("Thanks, hon. See you", "Thanks, hon."),
        ("Martin Luther King Jr. Then", "Martin Luther King Jr."),
        ("  Complete sentence.  ", "Complete sentence."),
        ("", ""),
        ("   ", ""),
    ],
)
def test_trim_to_last_sentence(text: str, expected: str) -> None:
    assert trim_to_last_sentence(text) == expected


def test_splitter_releases_a_sentence_once_the_next_word_starts() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there") == []
    assert splitter.feed(".") == []  # could still be "there.5" or an abbreviation
    assert splitter.feed(" ") == []  # the next word decides: "e.g. the" is not a boundary
    assert splitter.feed("How") == ["Hello there."]
    assert splitter.feed(" are you?") == []
    assert splitter.flush() == "How are you?"
    assert splitter.flush() == ""


def test_splitter_keeps_decimals_and_abbreviations_whole() -> None:
    splitter = SentenceSplitter()
    pieces = ["It", " costs", " $", "48", ".", "50", ".", " Dr", ".", " Smith", " agrees", ".", " Bye"]
    released = [sentence for piece in pieces for sentence in splitter.feed(piece)]
    assert released == ["It costs $48.50.", "Dr. Smith agrees."]
    assert splitter.flush() == "Bye"


def test_splitter_treats_a_line_break_as_a_boundary() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Tips:\n1. Drink") == ["Tips:"]
    assert splitter.feed(" water\n") == ["1. Drink water"]
    assert splitter.flush() == ""


@pytest.mark.parametrize("text", SAMPLES)
def test_streaming_matches_whole_text_in_any_chunking(text: str) -> None:
    rng = random.Random(1234)
    for _ in range(200):
        count = min(max(len(text) - 1, 0), rng.randint(0, 12))
        cuts = sorted(rng.sample(range(1, len(text)), k=count)) if count else []
        assert _stream(text, cuts) == split_sentences(text)


@pytest.mark.parametrize("text", SAMPLES)
def test_character_by_character_matches_whole_text(text: str) -> None:
    assert _stream(text, list(range(1, len(text)))) == split_sentences(text)


@pytest.mark.parametrize("text", [t for t in SAMPLES if t.strip()])
def test_trimmed_text_always_ends_a_sentence(text: str) -> None:
    for end in range(1, len(text) + 1):
        trimmed = trim_to_last_sentence(text[:end])
        if trimmed:
            assert trimmed[-1] in '.!?"', (text[:end], trimmed)
