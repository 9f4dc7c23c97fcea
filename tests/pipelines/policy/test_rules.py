from __future__ import annotations

import pytest

from pipelines.policy.pii import iban_valid, luhn_valid
from pipelines.policy.rules import DEFAULT_SAFE_REPLY, PolicyConfig, PolicyDecision, apply_policy

REDACT = PolicyConfig()


def redacted(reply: str) -> PolicyDecision:
    return apply_policy(reply, REDACT)


# --- cards ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",  # Visa, spaced
        "4111-1111-1111-1111",  # dashed
        "5555555555554444",  # Mastercard, contiguous
        "3782 822463 10005",  # Amex 4-6-5
        "6011 0009 9013 9424",  # Discover
        "4222222222222",  # 13-digit Visa
        "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",  # read out digit by digit
    ],
)
def test_luhn_valid_card_numbers_are_redacted(card: str) -> None:
    decision = redacted(f"Your card {card} is on file.")
    assert decision == PolicyDecision(
        "redacted", "Your card [card number removed] is on file.", ("redacted: card_number x1",)
    )


@pytest.mark.parametrize("number", ["4111 1111 1111 1112", "1234 5678 9012 3456", "5555555555554445"])
def test_numbers_failing_luhn_are_kept(number: str) -> None:
    assert luhn_valid(number.replace(" ", "")) is False
    assert redacted(f"Reference {number}.") == PolicyDecision("allowed", f"Reference {number}.")


def test_card_inside_a_longer_run_of_numbers_is_still_found() -> None:
    decision = redacted("Order 12 4111 1111 1111 1111 2 items")
    assert decision.text == "Order 12 [card number removed] 2 items"


def test_two_cards_are_counted() -> None:
    decision = redacted("Use 4111111111111111 or 5555-5555-5555-4444.")
    assert decision.text == "Use [card number removed] or [card number removed]."
    assert decision.reasons == ("redacted: card_number x2",)


def test_more_than_19_contiguous_digits_is_not_a_card() -> None:
    reply = "Tracking 41111111111111110000000"
    assert redacted(reply).verdict == "allowed"


# --- other kinds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected", "reason"),
    [
        ("Write to jane.doe+voice@example.co.uk.", "Write to [email removed].", "redacted: email x1"),
        ("Call 555-0192 today", "Call [phone number removed] today", "redacted: phone_number x1"),
        ("Call (415) 555-0192.", "Call [phone number removed].", "redacted: phone_number x1"),
        ("Call 415-555-0192.", "Call [phone number removed].", "redacted: phone_number x1"),
        ("Call 1 415 555 0192.", "Call [phone number removed].", "redacted: phone_number x1"),
        ("Call +1-415-555-0192.", "Call [phone number removed].", "redacted: phone_number x1"),
        ("Ring +44 20 7946 0958 now", "Ring [phone number removed] now", "redacted: phone_number x1"),
        ("Ring +33 1 42 68 53 00.", "Ring [phone number removed].", "redacted: phone_number x1"),
        ("SSN 123-45-6789.", "SSN [social security number removed].", "redacted: ssn x1"),
        (
            "IBAN GB82 WEST 1234 5698 7654 32 please",
            "IBAN [bank account number removed] please",
            "redacted: iban x1",
        ),
        ("Pay DE89370400440532013000.", "Pay [bank account number removed].", "redacted: iban x1"),
    ],
)
def test_each_kind_is_redacted(reply: str, expected: str, reason: str) -> None:
    assert redacted(reply) == PolicyDecision("redacted", expected, (reason,))


def test_several_kinds_are_reported_separately() -> None:
    decision = redacted("Email a@b.io, call 555-0192, card 4111 1111 1111 1111.")
    assert decision.text == "Email [email removed], call [phone number removed], card [card number removed]."
    assert decision.reasons == (
        "redacted: email x1",
        "redacted: card_number x1",
        "redacted: phone_number x1",
    )


def test_iban_checksum() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")
    assert redacted("Code GB83 WEST 1234 5698 7654 32").verdict == "allowed"


@pytest.mark.parametrize(
    "reply",
    [
        "I have 3 cats and 12 dogs.",
        "That happened in the year 2024.",
        "It costs $48.50, or $1,299.99 for the bundle.",
        "The store opens at 5:30 and closes at 10:45 pm.",
        "Your appointment is on 2024-05-17 in room 101.",
        "The 2023-2024 season had 82 games.",
        "Python 3.11.4 was released; ISBN 978-3-16-148410-0.",
        "Add 250 grams of flour and bake for 35 minutes at 180 degrees.",
        "Order number 12345 ships in 3 to 5 days.",
        "Mix 1 part vinegar with 3 parts water, 24/7 support, 99.9% uptime.",
    ],
)
def test_ordinary_sentences_with_numbers_are_untouched(reply: str) -> None:
    assert redacted(reply) == PolicyDecision("allowed", reply)


# --- blocking -------------------------------------------------------------------------------------------


def test_blocking_wins_and_replaces_the_whole_reply() -> None:
    config = PolicyConfig(block_patterns=(r"\bsecret\b", "forbidden"), safe_reply="I can't say that.")
    decision = apply_policy("The SECRET code is 4111 1111 1111 1111", config)
    assert decision == PolicyDecision(
        "blocked", "I can't say that.", (r"blocked: matched pattern '\bsecret\b'",)
    )


def test_every_matching_pattern_is_a_reason() -> None:
    config = PolicyConfig(block_patterns=("alpha", "beta", "gamma"))
    decision = apply_policy("alpha and gamma", config)
    assert decision.verdict == "blocked"
    assert decision.text == DEFAULT_SAFE_REPLY
    assert decision.reasons == ("blocked: matched pattern 'alpha'", "blocked: matched pattern 'gamma'")


def test_non_matching_patterns_let_the_reply_through() -> None:
    config = PolicyConfig(block_patterns=(r"\bsecret\b",))
    assert apply_policy("No secrets here.", config) == PolicyDecision("allowed", "No secrets here.")


def test_redaction_can_be_switched_off() -> None:
    reply = "Call 555-0192."
    assert apply_policy(reply, PolicyConfig(redact=False)) == PolicyDecision("allowed", reply)


# --- configuration --------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["(", "[a-", "*x", "(?P<x>a)(?P<x>b)"])
def test_invalid_regex_fails_when_the_config_is_built(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid policy block pattern"):
        PolicyConfig(block_patterns=("fine", pattern))


@pytest.mark.parametrize("pattern", ["", "a*", "x?", "(foo)?"])
def test_patterns_matching_the_empty_string_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="empty string"):
        PolicyConfig(block_patterns=(pattern,))


def test_a_single_string_is_not_mistaken_for_a_list_of_characters() -> None:
    with pytest.raises(TypeError):
        PolicyConfig(block_patterns="secret")  # type: ignore[arg-type]


def test_config_is_frozen_hashable_and_compares_by_settings() -> None:
    config = PolicyConfig(block_patterns=["secret"])  # type: ignore[arg-type]
    assert config.block_patterns == ("secret",)
    assert config == PolicyConfig(block_patterns=("secret",))
    assert hash(config) == hash(PolicyConfig(block_patterns=("secret",)))
    with pytest.raises(AttributeError):
        config.redact = False  # type: ignore[misc]
