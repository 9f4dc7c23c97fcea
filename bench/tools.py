"""Tool routing bench: precision, recall and a confusion matrix per tool, on three sets.

    python -m bench.tools                  # in-sample set + independent text set (both splits)
    python -m bench.tools --spoken         # + both splits spoken by piper and espeak-ng, transcribed by
                                           #   the bundled Whisper (cached in bench/data/)
    python -m bench.tools --calibrate      # grid-search THRESHOLD on the calibration split (its text and,
                                           #   once --spoken has made them, its transcripts)
    python -m bench.tools --baseline       # SmolLM2-135M choosing alone (chatml-function-calling)

Sets: (a) bench/tool_routing.jsonl, written together with the old keyword routes (in-sample);
(b) bench/data/tools_independent.jsonl from `bench/tools_data.py` (templates x entities x fillers not
used for the routes' examples), split into `calibration` and `test` by template AND by entity (each split
draws cities, order numbers, animals, countries and languages from its own list; checked at every run);
(c) the test split spoken; (d) bench/data/tools_lookalikes.jsonl, hand-written look-alikes (a city in a
travel question, a number in a maths question, "call" in a reminder) and tool requests in new words.
Thresholds are calibrated on (b)/calibration only; (b)/test, (c) and (d) are reported, never tuned on.

Each row: {"text", "tool" (a tool, a handoff such as transfer_to_support, or null), "arguments" (the
expected arguments, or null where the request needs the tool but lacks them: the agent asks for them)}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipelines.agents.registry import AgentRegistry, load_agents
from pipelines.agents.routing import Route, Router, route

DATA = Path(__file__).with_name("tool_routing.jsonl")
INDEPENDENT = Path(__file__).parent / "data" / "tools_independent.jsonl"
SPOKEN = Path(__file__).parent / "data" / "tools_spoken.jsonl"
#: Requests that name a place, a number or a person without needing a tool, and tool requests in
#: phrasings of neither split: the false positives a template set does not probe.
LOOKALIKES = Path(__file__).parent / "data" / "tools_lookalikes.jsonl"
#: The calibration split spoken the same way: thresholds see transcripts without seeing the test split's.
SPOKEN_CALIBRATION = Path(__file__).parent / "data" / "tools_spoken_calibration.jsonl"
NONE = "(no tool)"
Prediction = tuple[str | None, Any]


def load(path: Path = DATA, split: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


def _assistant_tools(registry: AgentRegistry) -> list[str]:
    assistant = registry.get("Assistant")
    return [t.name for t in assistant.tools] + [f"transfer_to_{h.name.lower()}" for h in assistant.handoffs]


def whisper_prompt(agents_spec: str) -> str | None:
    """What the stt stage and realtime sessions prompt Whisper with for a turn to the Assistant."""
    from pipelines.agents.vocabulary import transcription_prompt

    return transcription_prompt(load_agents(agents_spec, default="Assistant").get("Assistant"))


def predict_routes(
    rows: list[dict[str, Any]],
    agents_spec: str,
    router: Router | None = None,
    timings: list[float] | None = None,
) -> list[Prediction]:
    registry = load_agents(agents_spec, default="Assistant")
    router = router or registry.router
    available = _assistant_tools(registry)
    router.warm()
    out: list[Prediction] = []
    for row in rows:
        started = time.perf_counter()
        decision = route(row["text"], router, available)
        if timings is not None:
            timings.append((time.perf_counter() - started) * 1000)
        out.append((decision.tool, decision.arguments) if decision else (None, None))
    return out


def predict_baseline(rows: list[dict[str, Any]], agents_spec: str) -> list[Prediction]:
    """The model decides alone: tool schemas in llama.cpp's function-calling prompt, tool_choice=auto."""
    from pipelines.providers.llama_loader import load_llama
    from pipelines.providers.local_llm import gguf_path

    registry = load_agents(agents_spec, default="Assistant")
    assistant = registry.get("Assistant")
    tools = [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.params_json_schema},
        }
        for t in assistant.tools
    ]
    tools.append(
        {
            "type": "function",
            "function": {
                "name": "transfer_to_support",
                "description": "Hand the conversation to a human support agent.",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    )
    llm = load_llama(
        str(gguf_path()),
        n_ctx=2048,
        n_threads=2,
        seed=7,
        chat_format="chatml-function-calling",
        verbose=False,
    )
    out: list[Prediction] = []
    for row in rows:
        reply: Any = llm.create_chat_completion(
            messages=[
                {"role": "system", "content": assistant.instructions},
                {"role": "user", "content": row["text"]},
            ],
            tools=tools,
            tool_choice="auto",
            max_tokens=64,
            temperature=0.2,
        )
        calls = reply["choices"][0]["message"].get("tool_calls") or []
        if calls:
            try:
                arguments = json.loads(calls[0]["function"]["arguments"] or "{}")
            except ValueError:
                arguments = None
            out.append((calls[0]["function"]["name"], arguments))
        else:
            out.append((None, None))
    return out


def _arguments_match(want: Any, got: Any) -> bool:
    """Cities compare case-insensitively (the tool titles them); everything else exactly."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: str(v).casefold() for k, v in want.items()} == {
            k: str(v).casefold() for k, v in got.items()
        }
    return want == got


def report(
    rows: list[dict[str, Any]], predictions: list[Prediction], *, title: str = "", show_misses: bool = True
) -> dict[str, dict[str, float]]:
    """Prints precision/recall/argument accuracy per label and the confusion matrix; returns the table."""
    labels = sorted({r["tool"] or NONE for r in rows} | {p or NONE for p, _ in predictions})
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    args_ok: Counter[str] = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    for row, (tool, arguments) in zip(rows, predictions, strict=True):
        want, got = row["tool"] or NONE, tool or NONE
        confusion[want, got] += 1
        if want == got:
            tp[want] += 1
            ok = want == NONE or _arguments_match(row["arguments"], arguments)
            args_ok[want] += ok
            if not ok and show_misses:
                print(f"  args: {row['text']!r}: expected {row['arguments']}, got {arguments}")
        else:
            fp[got] += 1
            fn[want] += 1
            if show_misses:
                print(f"  miss: {row['text']!r}: expected {want}, got {got} {arguments or ''}")
    if title:
        print(f"\n## {title} ({len(rows)} utterances)")
    print(f"{'tool':22} {'n':>4} {'precision':>9} {'recall':>7} {'args ok':>8}")
    table: dict[str, dict[str, float]] = {}
    for label in labels:
        n = tp[label] + fn[label]
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 1.0
        recall = tp[label] / n if n else 1.0
        arguments = args_ok[label] / tp[label] if tp[label] else 0.0
        table[label] = {"n": n, "precision": precision, "recall": recall, "arguments": arguments}
        print(f"{label:22} {n:4d} {precision:9.2f} {recall:7.2f} {arguments:8.2f}")
    short = [label[:12] for label in labels]
    print("\nconfusion (rows: expected, columns: chosen)")
    print(f"{'':22} " + " ".join(f"{s:>12}" for s in short))
    for want in labels:
        print(f"{want:22} " + " ".join(f"{confusion[want, got]:12d}" for got in labels))
    return table


def worst(table: dict[str, dict[str, float]]) -> float:
    return min(min(s["precision"], s["recall"]) for s in table.values())


def calibration_rows() -> list[dict[str, Any]]:
    """The calibration split as text, plus its transcripts per voice where they have been made
    (`--spoken` makes them): each set weighs the same in `calibrate`'s worst-case score."""
    rows = [r | {"set": "text"} for r in load(INDEPENDENT, "calibration")]
    if SPOKEN_CALIBRATION.exists():
        rows += [r | {"set": r["voice"]} for r in load(SPOKEN_CALIBRATION)]
    return rows


def calibrate(agents_spec: str) -> float:
    """The threshold that maximises the worst per-tool precision/recall over the calibration sets (the
    split as text and as each voice's transcripts; never the test split), ties broken towards the
    middle of the plateau (its edge generalises worse). Probabilities are computed once per row; only
    the decision is repeated over the grid."""
    registry = load_agents(agents_spec, default="Assistant")
    rows = calibration_rows()
    print("calibrating on", dict(Counter(r["set"] for r in rows)))
    allowed = [t for t in registry.routes if t in set(_assistant_tools(registry))]
    router = registry.router
    router.warm()
    scored = []
    for row in rows:
        forced = next((t for t in allowed if router.routes[t].forced(row["text"])), None)
        scored.append((row, forced, router.scores(row["text"], allowed)))
    labels = {(r["set"], r["tool"] or NONE) for r in rows}
    wanted = Counter((r["set"], r["tool"] or NONE) for r in rows)
    results = []
    for threshold in [x / 100 for x in range(20, 96, 1)]:
        chosen: Counter[tuple[str, str]] = Counter()
        tp: Counter[tuple[str, str]] = Counter()
        for row, forced, scores in scored:
            decision = (forced, 1.0) if forced else router.decide(row["text"], scores, threshold)
            got, want = (decision[0] if decision else NONE), row["tool"] or NONE
            chosen[row["set"], got] += 1
            tp[row["set"], got] += got == want
        score = min(min(tp[x] / max(chosen[x], 1), tp[x] / max(wanted[x], 1)) for x in labels)
        results.append((score, threshold))
    best = max(s for s, _ in results)
    plateau = [t for s, t in results if s == best]
    threshold = plateau[len(plateau) // 2]
    print(f"best worst-case P/R on calibration: {best:.3f} for thresholds {plateau[0]}..{plateau[-1]}")
    print(f"THRESHOLD = {threshold}")
    return threshold


def _cpu_ms(text: str, router: Router, available: list[str]) -> float:
    """Process CPU time of routing one request, in ms: on shared cores wall time measures the
    neighbours too."""
    started = time.process_time()
    route(text, router, available)
    return (time.process_time() - started) * 1000


def latency(agents_spec: str, rows: list[dict[str, Any]]) -> None:
    """Per-request routing cost in process CPU time, side by side in one run: override patterns only,
    the router on a request it has not seen, and the same request again (a turn's final transcript
    equal to its speculative one, served from the router's cache of recent vectors)."""
    registry = load_agents(agents_spec, default="Assistant")
    keyword_only = Router(
        {
            t: Route(patterns=r.patterns, exclude=r.exclude, arguments=r.arguments)
            for t, r in registry.routes.items()
        }
    )
    router = registry.router
    router.warm()
    available = _assistant_tools(registry)
    patterns, fresh, again = [], [], []
    for row in rows:
        patterns.append(_cpu_ms(row["text"], keyword_only, available))
        fresh.append(_cpu_ms(row["text"], router, available))
        again.append(_cpu_ms(row["text"], router, available))
    print(f"\n## routing cost per request, process CPU ({len(rows)} requests, same run)")
    print(f"{'router':34} {'p50 ms':>7} {'p90 ms':>7}")
    for name, values in (
        ("patterns only (old)", patterns),
        ("router, new request", fresh),
        ("router, same text again (cached)", again),
    ):
        q = statistics.quantiles(values, n=10)
        print(f"{name:34} {statistics.median(values):7.2f} {q[8]:7.2f}")


def separation() -> None:
    """Say (and check) how the calibration split is kept apart from the test split."""
    from bench.tools_data import ENTITIES, check_separated

    rows = load(INDEPENDENT)
    check_separated(rows)
    for split in ("calibration", "test"):
        mine = [r for r in rows if r["split"] == split]
        cities = ", ".join(ENTITIES[split]["city"][:3])
        print(
            f"{split}: {len(mine)} rows, {len({r['template'] for r in mine})} templates, "
            f"entities from ENTITIES[{split!r}] (cities {cities}, ...)"
        )
    print("calibration and test share no template and no entity (bench.tools_data.check_separated)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", default="pipelines.agents.examples:agents")
    parser.add_argument("--baseline", action="store_true", help="let SmolLM2 choose tools by itself")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--spoken", action="store_true", help="also the spoken test split (TTS -> Whisper)")
    parser.add_argument("--resynthesize", action="store_true", help="speak and transcribe again")
    parser.add_argument("--quiet", action="store_true", help="no per-utterance misses")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.agents)
        return
    predict = predict_baseline if args.baseline else predict_routes
    sets = [
        ("(a) in-sample: bench/tool_routing.jsonl", load(DATA)),
        ("(b) independent text, calibration split", load(INDEPENDENT, "calibration")),
        ("(b) independent text, test split", load(INDEPENDENT, "test")),
        ("(d) look-alikes, written by hand after the routes (never trained or tuned on)", load(LOOKALIKES)),
    ]
    if args.spoken:
        from bench.tools_speech import spoken_rows

        prompt = whisper_prompt(args.agents)
        for split, cache in (("calibration", SPOKEN_CALIBRATION), ("test", SPOKEN)):
            spoken = spoken_rows(load(INDEPENDENT, split), cache, prompt=prompt, refresh=args.resynthesize)
            for voice in sorted({r["voice"] for r in spoken}):
                sets.append(
                    (
                        f"(c) {split} split spoken by {voice}, Whisper tiny.en",
                        [r for r in spoken if r["voice"] == voice],
                    )
                )
    separation()
    for title, rows in sets:
        report(rows, predict(rows, args.agents), title=title, show_misses=not args.quiet)
    if not args.baseline:
        latency(args.agents, load(INDEPENDENT, "test"))


if __name__ == "__main__":
    main()
