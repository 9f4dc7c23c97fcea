"""Finding personal data in a reply so it is never spoken aloud.

Each detector favours a checksum or a strict shape over a loose pattern: a voice agent reads prices, times,
counts and years all day, and a redaction that eats "12 dogs" is a bug the caller hears. Cards must pass
Luhn and IBANs mod-97, so a random 16-digit number stays.

Detectors run in a fixed order on the text as redacted so far (emails before the numbers inside them,
cards and SSNs before the phone pattern that would match part of them); the replacement tokens contain no
digits or `@`, so no later detector can match inside an earlier one's token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Span = tuple[int, int]

CARD_MIN_DIGITS, CARD_MAX_DIGITS = 13, 19


@dataclass(frozen=True)
class Detector:
    """One kind of personal data: its reason name, the words spoken in its place, and how to find it."""

    kind: str
    token: str
    find: Callable[[str], list[Span]]


def luhn_valid(digits: str) -> bool:
    """The payment-card checksum: it rejects 90% of random digit strings and every single-digit typo."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97: country code and check digits moved to the end, letters as 10..35."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
# Two letters, two check digits, then 11..30 alphanumerics, optionally grouped by single spaces.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
# Digit groups joined by single spaces or dashes: the shapes in which card numbers are written or read out.
_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*(?!\d)")
_DIGIT_GROUP = re.compile(r"\d+")
_SSN = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
_PHONE = re.compile(
    r"""
    (?<![\w+])
    (?:
        \+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,5}          # +44 20 7946 0958, +1-415-555-0192
      | (?:1[ .-]?)?(?:\(\d{3}\)\ ?|\d{3}[ .-])\d{3}[ .-]\d{4}    # (415) 555-0192, 415.555.0192
      | \d{3}-\d{4}                                             # 555-0192
    )
    (?!\w)
    """,
    re.VERBOSE,
)
_PHONE_DIGITS = range(7, 16)  # a local number up to E.164's 15 digits


def find_emails(text: str) -> list[Span]:
    return [match.span() for match in _EMAIL.finditer(text)]


def find_ibans(text: str) -> list[Span]:
    """The pattern may run on into a following code-like word; shorten until the checksum holds."""
    spans = []
    for match in _IBAN.finditer(text):
        candidate = match.group()
        for end in range(len(candidate), 0, -1):
            if candidate[end - 1] != " " and iban_valid(candidate[:end]):
                spans.append((match.start(), match.start() + end))
                break
    return spans


def find_card_numbers(text: str) -> list[Span]:
    """Within each run of digit groups, redact the Luhn-valid stretches of 13 to 19 digits.

    A run can hold more than a card ("order 12 4111 1111 1111 1111"), so whole groups are tried as
    sub-runs, longest first; a run with no valid stretch is left alone.
    """
    spans: list[Span] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [
            (run.start() + g.start(), run.start() + g.end()) for g in _DIGIT_GROUP.finditer(run.group())
        ]
        spans.extend(_card_spans(text, groups))
    return spans


def find_ssns(text: str) -> list[Span]:
    return [match.span() for match in _SSN.finditer(text)]


def find_phone_numbers(text: str) -> list[Span]:
    return [
        match.span()
        for match in _PHONE.finditer(text)
        if sum(char.isdigit() for char in match.group()) in _PHONE_DIGITS
    ]


DETECTORS: tuple[Detector, ...] = (
    Detector("email", "[email removed]", find_emails),
    Detector("iban", "[bank account number removed]", find_ibans),
    Detector("card_number", "[card number removed]", find_card_numbers),
    Detector("ssn", "[social security number removed]", find_ssns),
    Detector("phone_number", "[phone number removed]", find_phone_numbers),
)


def redact_pii(text: str, detectors: tuple[Detector, ...] = DETECTORS) -> tuple[str, dict[str, int]]:
    """Replace every detected item with its token; return the text and how many of each kind were found."""
    counts: dict[str, int] = {}
    for detector in detectors:
        spans = detector.find(text)
        if spans:
            text = _replace(text, spans, detector.token)
            counts[detector.kind] = len(spans)
    return text, counts


def _replace(text: str, spans: list[Span], token: str) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + token + text[end:]
    return text


def _card_spans(text: str, groups: list[Span]) -> list[Span]:
    """The longest Luhn-valid stretch of whole groups, then the same on either side of it."""
    best: tuple[int, int, int] | None = None  # (digit count, first group, last group)
    for first in range(len(groups)):
        digits = ""
        for last in range(first, len(groups)):
            digits += text[groups[last][0] : groups[last][1]]
            if len(digits) > CARD_MAX_DIGITS:
                break
            if (
                len(digits) >= CARD_MIN_DIGITS
                and (best is None or len(digits) > best[0])
                and luhn_valid(digits)
            ):
                best = (len(digits), first, last)
    if best is None:
        return []
    _, first, last = best
    return [
        *_card_spans(text, groups[:first]),
        (groups[first][0], groups[last][1]),
        *_card_spans(text, groups[last + 1 :]),
    ]
