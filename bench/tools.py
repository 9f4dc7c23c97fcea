"""Tool routing bench: precision and recall per tool on the labelled utterances in tool_routing.jsonl.

    python -m bench.tools                 # the routes of the configured agents module (the local default)
    python -m bench.tools --baseline      # SmolLM2-135M choosing alone (chatml-function-calling)

Each line: {"text", "tool" (a tool, a handoff such as transfer_to_support, or null), "arguments" (the
expected arguments, or null where the request needs the tool but lacks them: the agent asks for them)}.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipelines.agents.registry import load_agents
from pipelines.agents.routing import route

DATA = Path(__file__).with_name("tool_routing.jsonl")
NONE = "(no tool)"


def load(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def predict_routes(rows: list[dict[str, Any]], agents_spec: str) -> list[tuple[str | None, Any]]:
    registry = load_agents(agents_spec, default="Assistant")
    assistant = registry.get("Assistant")
    available = [t.name for t in assistant.tools] + [
        f"transfer_to_{h.name.lower()}" for h in assistant.handoffs
    ]
    out = []
    for row in rows:
        decision = route(row["text"], registry.routes, available)
        out.append((decision.tool, decision.arguments) if decision else (None, None))
    return out


def predict_baseline(rows: list[dict[str, Any]], agents_spec: str) -> list[tuple[str | None, Any]]:
    """The model decides alone: tool schemas in llama.cpp's function-calling prompt, tool_choice=auto."""
    from llama_cpp import Llama

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
    llm = Llama(
        str(gguf_path()),
        n_ctx=2048,
        n_threads=2,
        seed=7,
        chat_format="chatml-function-calling",
        verbose=False,
    )
    out = []
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
            name = calls[0]["function"]["name"]
            try:
                arguments = json.loads(calls[0]["function"]["arguments"] or "{}")
            except ValueError:
                arguments = None
            out.append((name, arguments))
        else:
            out.append((None, None))
    return out


def report(
    rows: list[dict[str, Any]], predictions: list[tuple[str | None, Any]]
) -> dict[str, dict[str, float]]:
    labels = sorted({r["tool"] or NONE for r in rows} | {p or NONE for p, _ in predictions})
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    args_ok: Counter[str] = Counter()
    for row, (tool, arguments) in zip(rows, predictions, strict=True):
        want, got = row["tool"] or NONE, tool or NONE
        if want == got:
            tp[want] += 1
            args_ok[want] += want == NONE or arguments == row["arguments"]
        else:
            fp[got] += 1
            fn[want] += 1
            print(f"  miss: {row['text']!r}: expected {want}, got {got} {arguments or ''}")
    table: dict[str, dict[str, float]] = {}
    print(f"\n{'tool':22} {'n':>3} {'precision':>9} {'recall':>7} {'args ok':>8}")
    for label in labels:
        n = tp[label] + fn[label]
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 1.0
        recall = tp[label] / n if n else 1.0
        arguments = args_ok[label] / tp[label] if tp[label] else 0.0
        table[label] = {"n": n, "precision": precision, "recall": recall, "arguments": arguments}
        print(f"{label:22} {n:3d} {precision:9.2f} {recall:7.2f} {arguments:8.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", default="pipelines.agents.examples:agents")
    parser.add_argument("--baseline", action="store_true", help="let SmolLM2 choose tools by itself")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    rows = load(args.data)
    started = time.perf_counter()
    predictions = (predict_baseline if args.baseline else predict_routes)(rows, args.agents)
    elapsed = time.perf_counter() - started
    print(
        f"{len(rows)} utterances, {'SmolLM2 function calling' if args.baseline else 'routes'}, "
        f"{elapsed * 1000 / len(rows):.2f} ms each"
    )
    report(rows, predictions)


if __name__ == "__main__":
    main()
