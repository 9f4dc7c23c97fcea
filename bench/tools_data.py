"""Builds the independent tool-routing set: templates x entities x paraphrases, with a fixed seed.

    python -m bench.tools_data        # writes bench/data/tools_independent.jsonl

Why a generator and not a hand list: the labelled set in bench/tool_routing.jsonl was written together
with the keyword routes and scored 1.00 while unseen spoken requests got 10 of 15. The templates here
were written apart from the routes' examples (pipelines/agents/examples.py) and use other entities
(cities and order numbers the examples never name), other sentence shapes, and speech fillers.

Each template belongs to one split, alternately: `calibration` (thresholds are tuned on it by
`bench/tools.py --calibrate`) or `test` (reported only). The two splits also draw their entities from
disjoint lists (`ENTITIES["calibration"]` / `ENTITIES["test"]`: cities, order numbers, animals, countries,
languages), so a test row shares neither a template nor an entity with anything calibration saw;
`check_separated` asserts it and bench/tools.py prints it. The test rows are generated exactly as the
first version of this set did (same seed, same draws), so the spoken cache of the test split stays valid;
calibration rows come from their own generator seed, `per_template` = 8 for steadier tuning.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).parent / "data" / "tools_independent.jsonl"
SEED = 20261202

CITIES = [
    "Madrid", "Rome", "Vienna", "Prague", "Nairobi", "Buenos Aires", "Mexico City", "Sydney", "Mumbai",
    "Helsinki", "Warsaw", "Stockholm", "Kyoto", "Montreal", "Glasgow", "Marseille", "Lagos", "Lima",
    "Hanoi", "Zurich", "Budapest", "Cape Town", "Bangkok", "Reykjavik", "Istanbul", "Boston", "Phoenix",
]  # fmt: skip
#: Order numbers and the ways a caller says them.
ORDER_IDS = ["427", "1042", "2001", "3300", "58", "9134", "760", "2215"]
_DIGIT = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEEN = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _below_100(n: int) -> str:
    if n < 10:
        return _DIGIT[n]
    if n < 20:
        return _TEEN[n - 10]
    return _TENS[n // 10] + ("-" + _DIGIT[n % 10] if n % 10 else "")


def spoken_forms(number: str) -> list[str]:
    """ "427" -> ["427", "four two seven", "four hundred twenty-seven"]; "1042" -> "ten forty-two"."""
    n = int(number)
    forms = [number, " ".join(_DIGIT[int(d)] for d in number)]
    if len(number) == 3:
        rest = n % 100
        forms.append(f"{_DIGIT[n // 100]} hundred" + (f" {_below_100(rest)}" if rest else ""))
    elif len(number) == 4 and number[2] != "0":
        forms.append(f"{_below_100(n // 100)} {_below_100(n % 100)}")
    elif len(number) == 2:
        forms.append(_below_100(n))
    return forms


WEATHER = [
    "how warm will it be in {city} tomorrow afternoon",
    "any chance of showers over {city} later",
    "I'm flying to {city}, what should I pack for the climate there this week",
    "give me the outlook for {city}",
    "is {city} going to be chilly tonight",
    "what's it like outside in {city} at the moment",
    "how's the sky looking above {city}",
    "will there be a storm in {city} on Saturday",
    "could you check if it's humid in {city}",
    "do I need sunscreen in {city} today",
    "I'm heading out in {city}, is it freezing",
    "what temperature is it over in {city}",
]
ORDER = [
    "where is my order {n}",
    "I'm still waiting on order {n}",
    "any update on the package I bought, it's order {n}",
    "can you find out what happened to order {n}",
    "has order {n} left the warehouse",
    "I never got my delivery, the order number is {n}",
    "look up order {n} for me",
    "what's going on with my purchase, order {n}",
    "when does order {n} get here",
    "my order {n} still hasn't shown up",
    "I'd like to know where my shipment is",
    "did my order go out yet",
]
SUPPORT = [
    "put me through to a person",
    "I'd rather speak with somebody from your team",
    "is there a human I can talk to",
    "transfer me to an operator please",
    "I need to escalate this to a manager",
    "this is ridiculous, I want my money returned",
    "can a live agent help me instead",
    "I have a problem with a charge and need someone to sort it out",
    "hook me up with customer care",
    "I want to file a formal complaint about the service",
    "get a real human on the line",
    "the item I received is damaged and I want to return it",
]
NONE = [
    "how many legs does a {animal} have",
    "tell me something funny about {animal}s",
    "what do {animal}s eat",
    "who painted the Mona Lisa",
    "what's the capital of {country}",
    "how far is the moon from the earth",
    "can you recommend a good movie",
    "what does the word weather mean in a sentence like I wonder whether",
    "how do I cook rice",
    "I ordered my thoughts before the meeting",
    "spell the word forecast",
    "what's the population of {country}",
    "why do cats purr",
    "help me write a poem about the sea",
    "what year did the first person walk on the moon",
    "I'm feeling under the weather today",
    "what is the order of the planets",
    "explain how a rainbow forms",
    "what's a good name for a dog",
    "how do you say thank you in {language}",
    "is a tomato a fruit",
    "what is the speed of light",
    "who is the person who invented the telephone",
    "give me a fun fact about {country}",
]
ANIMALS = ["spider", "horse", "octopus", "penguin", "dog", "ant"]
COUNTRIES = ["Japan", "Brazil", "Canada", "Kenya", "Norway", "Peru"]
LANGUAGES = ["French", "German", "Italian", "Japanese"]
PREFIXES = ["", "", "hey, ", "um, ", "okay so ", "quick question, ", "hi there, ", "sorry, "]
SUFFIXES = ["", "", "?", "?", ".", " please.", ", thanks.", " right now?"]


def _surface(text: str, rng: random.Random) -> str:
    """A paraphrase of the written form: filler, ending, and letter case as a transcript might have."""
    text = rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)
    style = rng.random()
    if style < 0.3:
        return text.lower()
    return text[0].upper() + text[1:]


#: Entities of the calibration split: none of them appears in a test row (or in the routes' examples).
CALIBRATION_CITIES = [
    "Seoul", "Jakarta", "Manila", "Karachi", "Casablanca", "Accra", "Addis Ababa", "Santiago", "Bogota",
    "Quito", "Havana", "Ottawa", "Winnipeg", "Melbourne", "Auckland", "Krakow", "Bucharest", "Sofia",
    "Tallinn", "Riga", "Munich", "Hamburg", "Milan", "Naples", "Porto", "Lyon", "Geneva", "Antwerp",
]  # fmt: skip
ENTITIES: dict[str, dict[str, list[str]]] = {
    "test": {
        "city": CITIES, "order": ORDER_IDS, "animal": ANIMALS, "country": COUNTRIES, "language": LANGUAGES,
    },
    "calibration": {
        "city": CALIBRATION_CITIES,
        "order": ["615", "4808", "39", "7251", "830", "1176", "5093", "2748"],
        "animal": ["giraffe", "whale", "frog", "bee", "owl", "camel"],
        "country": ["Chile", "Egypt", "Sweden", "India", "Greece", "Portugal"],
        "language": ["Spanish", "Portuguese", "Dutch", "Korean"],
    },
}  # fmt: skip


def build(
    seed: int = SEED, per_template: int = 4, calibration_per_template: int = 8
) -> list[dict[str, object]]:
    """Test rows exactly as first generated, then calibration rows from their own entities and seed."""
    test = [r for r in _build(seed, per_template, "test") if r["split"] == "test"]
    calibration = [
        r for r in _build(seed + 1, calibration_per_template, "calibration") if r["split"] == "calibration"
    ]
    rows = calibration + test
    check_separated(rows)
    return rows


def check_separated(rows: list[dict[str, object]]) -> None:
    """No template and no entity (case-folded, as a whole word) of the test split in a calibration row."""
    test_templates = {r["template"] for r in rows if r["split"] == "test"}
    calibration = [r for r in rows if r["split"] == "calibration"]
    assert not test_templates & {r["template"] for r in calibration}, "a template is in both splits"
    test_entities = {e.casefold() for values in ENTITIES["test"].values() for e in values}
    for row in calibration:
        words = " " + " ".join(str(row["text"]).casefold().replace(",", " ").replace("?", " ").split()) + " "
        template = str(row["template"]).casefold()  # "a good name for a dog" names no entity
        shared = [e for e in test_entities if f" {e} " in words and e not in template]
        assert not shared, f"test entity {shared} in calibration row {row['text']!r}"


def _build(seed: int, per_template: int, entities: str) -> list[dict[str, object]]:
    rng = random.Random(seed)
    pool = ENTITIES[entities]
    rows: list[dict[str, object]] = []
    template_index = 0
    for tool, templates in (
        ("get_weather", WEATHER),
        ("get_order_status", ORDER),
        ("transfer_to_support", SUPPORT),
        (None, NONE),
    ):
        for template in templates:
            split = "calibration" if template_index % 2 == 0 else "test"
            template_index += 1
            for _ in range(per_template):
                arguments: dict[str, str] | None = {}
                if "{city}" in template:
                    city = rng.choice(pool["city"])
                    text = template.format(city=city if rng.random() < 0.6 else city.lower())
                    arguments = {"city": city}
                elif "{n}" in template:
                    number = rng.choice(pool["order"])
                    text = template.format(n=rng.choice(spoken_forms(number)))
                    arguments = {"order_id": number}
                else:
                    text = template.format(
                        animal=rng.choice(pool["animal"]),
                        country=rng.choice(pool["country"]),
                        language=rng.choice(pool["language"]),
                    )
                    arguments = None if tool in ("get_weather", "get_order_status") else {}
                if tool is None:
                    arguments = None
                rows.append(
                    {
                        "text": _surface(text, rng),
                        "tool": tool,
                        "arguments": arguments,
                        "split": split,
                        "template": template,
                    }
                )
    # a template without entities repeats itself; keep one copy of each distinct text
    seen: set[str] = set()
    unique = []
    for row in rows:
        key = str(row["text"]).casefold()
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def main() -> None:
    rows = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = {s: sum(r["split"] == s for r in rows) for s in ("calibration", "test")}
    print(f"{len(rows)} rows -> {OUT} ({splits})")


if __name__ == "__main__":
    main()
