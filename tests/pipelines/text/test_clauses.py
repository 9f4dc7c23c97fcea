"""The opening of a streamed reply that is spoken before its first sentence ends."""

from __future__ import annotations

from pipelines.text.clauses import first_chunk
from pipelines.text.sentences import SentenceSplitter


def test_a_comma_after_three_words() -> None:
    assert first_chunk("Sure, I") is None
    assert first_chunk("The capital of France is Paris, and") == "The capital of France is Paris,"


def test_before_a_clause_opener_once_it_is_a_whole_word() -> None:
    assert first_chunk(" Vaccines train the body that") is None  # "that" may grow
    assert first_chunk(" Vaccines train the body that helps") == " Vaccines train the body"
    assert first_chunk("I think so because") is None  # "because" may still grow
    assert first_chunk("Thanks because ") is None  # too early for a clause opener
    assert first_chunk("The main difference between weather and climate is") is None  # "and": a noun phrase


def test_before_a_preposition_after_four_words_and_a_cap_of_ten() -> None:
    assert first_chunk("A refrigerator keeps food cold by using") == "A refrigerator keeps food cold"
    assert first_chunk("Bees make honey from nectar") is None  # "from" after three words: too early
    assert first_chunk("Bees go out in the ") is None
    words = "one two three four five six seven eight nine ten eleven"
    assert first_chunk(words + " twelve") == "one two three four five six seven eight nine ten"


def test_after_six_words_where_a_phrase_can_end() -> None:
    assert first_chunk("The season on earth is a recurring event and") == "The season on earth is a recurring"
    assert first_chunk("The main difference between weather and climate is the") == (
        "The main difference between weather and climate"
    )  # not on "and"
    assert first_chunk("The moon is about three hundred thousand kilometres away from") == (
        "The moon is about three hundred thousand kilometres"
    )  # not inside the number
    assert first_chunk("Honey bees collect nectar and pollen") is None  # six words, the last may grow


def test_streamed_token_by_token_the_chunk_is_a_prefix_and_nothing_is_lost() -> None:
    reply = "Vaccines are a type of medical treatment that helps the body fight disease. They work well."
    head, spoken = "", []
    tokens = [reply[i : i + 3] for i in range(0, len(reply), 3)]
    for token in tokens:
        head += token
        chunk = first_chunk(head)
        if chunk is not None:
            assert reply.startswith(chunk)
            splitter = SentenceSplitter()
            spoken = [chunk, *splitter.feed(reply[len(chunk) :]), splitter.flush()]
            break
    assert len(head) < reply.index(".")  # spoken before the first sentence was complete
    assert " ".join(s.strip() for s in spoken if s) == reply
