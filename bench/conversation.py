"""Multi-turn bench: does the local model keep answering the question that was asked?

    python -m bench.conversation               # every window variant, side by side, one table
    python -m bench.conversation --turns 1     # one variant, with each answer printed

A 20-question general conversation runs through `LlamaCppChatModel` (the bundled SmolLM2-135M, the
provider both the chained path and the realtime pool use), each question after the whole conversation so
far, as a session would send it. Each answer is checked for:
- on topic: it names what the question was about (any of the question's topic words, by word prefix:
  "leg" matches "legs");
- verbatim repeat: the same text (case and punctuation aside) as an earlier answer;
- shape repeat: the same first four words as an earlier answer (the issue's "The answer to this
  question is not a spider." / "... not a sky.");
- leak: it names the previous question's topic but not its own.
Goal (issue 14): on topic >= 80 %, no verbatim repeats.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass

from pipelines.agents.window import FOCUS
from pipelines.providers.base import ChatMessage, GenerationOptions
from pipelines.providers.local_llm import LlamaCppChatModel

INSTRUCTIONS = (
    "You are a helpful voice assistant. Answer in one or two short spoken sentences, "
    "without lists or markdown."
)  # the shipped Assistant's instructions (pipelines/agents/examples.py)

QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("france", "paris", "capital", "french")),
    ("How many legs does a spider have?", ("spider", "leg", "eight", "8")),
    ("Why is the sky blue?", ("sky", "blue", "light", "scatter")),
    ("Can you recommend a good book?", ("book", "novel", "read", "author")),
    ("What is the boiling point of water?", ("water", "boil", "100", "degree")),
    ("Who was Albert Einstein?", ("einstein", "physic", "relativity", "scien")),
    ("How do bees make honey?", ("bee", "honey", "nectar", "flower")),
    ("What is the largest ocean on Earth?", ("ocean", "pacific")),
    ("How many days are in a leap year?", ("leap", "366", "day")),
    ("What do pandas eat?", ("panda", "bamboo")),
    ("Why do we need sleep?", ("sleep", "rest", "tired")),
    ("What is the tallest mountain in the world?", ("mountain", "everest")),
    ("How does a rainbow form?", ("rainbow", "light", "rain", "colo")),
    ("What language do people speak in Brazil?", ("brazil", "portugu", "language")),
    ("Give me a tip for learning to cook.", ("cook", "recipe", "kitchen", "food", "ingredient", "dish")),
    ("What is photosynthesis?", ("photosynthe", "plant", "sunlight", "light")),
    ("How far away is the Moon?", ("moon", "kilomet", "km", "mile", "distance")),
    ("What is the main ingredient in guacamole?", ("guacamole", "avocado")),
    ("Why do cats purr?", ("cat", "purr")),
    ("What is a healthy breakfast?", ("breakfast", "healthy", "egg", "fruit", "oat")),
]

#: (label, history_turns, focus): None turns = the whole conversation (the old behaviour).
VARIANTS: list[tuple[str, int | None, bool]] = [
    ("whole history, no focus (old)", None, False),
    ("whole history + focus", None, True),
    ("last 2 exchanges + focus", 2, True),
    ("last 1 exchange + focus", 1, True),
    ("last 1 exchange, no focus", 1, False),
    ("no history + focus", 0, True),
]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def mentions(answer: str, topics: tuple[str, ...]) -> bool:
    return any(w.startswith(t) for w in _words(answer) for t in topics)


@dataclass
class Score:
    on_topic: int = 0
    verbatim: int = 0
    shape: int = 0
    leaks: int = 0
    seconds: float = 0.0


def run(model: LlamaCppChatModel, options: GenerationOptions, *, verbose: bool = False) -> Score:
    messages = [ChatMessage("system", INSTRUCTIONS)]
    answers: list[str] = []
    score = Score()
    started = time.perf_counter()
    for index, (question, topics) in enumerate(QUESTIONS):
        messages.append(ChatMessage("user", question))
        answer = model.complete(messages, options).text.strip()
        messages.append(ChatMessage("assistant", answer))
        normal = " ".join(_words(answer))
        on_topic = mentions(answer, topics)
        verbatim = any(normal == " ".join(_words(a)) for a in answers)
        shape = len(_words(answer)) >= 4 and any(_words(answer)[:4] == _words(a)[:4] for a in answers)
        leak = index > 0 and not on_topic and mentions(answer, QUESTIONS[index - 1][1])
        score.on_topic += on_topic
        score.verbatim += verbatim
        score.shape += shape
        score.leaks += leak
        answers.append(answer)
        if verbose:
            flags = "".join(
                f for f, on in (("T", on_topic), ("R", verbatim), ("S", shape), ("L", leak)) if on
            )
            print(f"{index + 1:2d} [{flags:4}] {question}\n      -> {answer}", flush=True)
    score.seconds = time.perf_counter() - started
    return score


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=None, help="run only this window (with focus)")
    parser.add_argument("--max-tokens", type=int, default=96)  # Settings.llm_max_tokens
    parser.add_argument("--temperature", type=float, default=0.2)  # Settings.llm_temperature
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    options = GenerationOptions(max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    variants = VARIANTS if args.turns is None else [(f"last {args.turns} + focus", args.turns, True)]
    model = LlamaCppChatModel(n_ctx=4096, seed=args.seed)
    n = len(QUESTIONS)
    rows = []
    for label, turns, focus in variants:
        model.history_turns = turns
        model.focus = FOCUS if focus else None
        score = run(model, options, verbose=args.turns is not None)
        rows.append((label, score))
        print(f"{label}: on topic {score.on_topic}/{n}, verbatim {score.verbatim}", flush=True)
    print(f"\n{n} questions, SmolLM2-135M Q4_1, max_tokens {args.max_tokens}, temperature {args.temperature}")
    print(f"{'window':32} {'on topic':>8} {'verbatim':>8} {'shape':>6} {'leaks':>6} {'s/turn':>7}")
    for label, s in rows:
        print(
            f"{label:32} {s.on_topic / n:7.0%} {s.verbatim:8d} {s.shape:6d} {s.leaks:6d} {s.seconds / n:7.2f}"
        )


if __name__ == "__main__":
    main()
