"""What one parse costs: CPU µs per message through the models' own path and through
`parse_event` / `parse_command` (`streams.decoding` first), side by side in one process.

`python -m bench.parse [--events N] [--rounds N]`: phase d's events (`bench.data`), also held
a batch at a time as the worker holds them, the golden corpus's events, an old schema version
(which takes the models' path after the fast one refuses it) and the commands the pipeline
benchmarks send. Each round times every variant once over the same messages, so load on the
machine falls on all of them alike; the figure is the best round. Writes
bench/results/<time>-parse.json.
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.data import generate
from bench.pipeline_tools import command, product
from bench.trace import commit_of
from streams.envelopes import Command, CommandResult, Event, parse_command, parse_event
from tests.integration.cluster import ROOT

GOLDEN = ROOT / "tests" / "golden" / "events"
KEPT = 1_000


def samples(events: int) -> dict[str, list[bytes]]:
    corpus = [path.read_bytes() for path in sorted(GOLDEN.glob("*.json"))]
    commands = [orjson.dumps(command("Restock", f"sku-{i}", {"quantity": 1 + i % 9}))
                for i in range(events // 2)]
    commands += [orjson.dumps(command("PlaceOrder", f"order-{i}", {
        "customer_id": f"cust-{i % 97}", "lines": [{"sku": f"sku-{i % 200}", "quantity": 1}]}))
        for i in range(events // 4)]
    commands += [orjson.dumps(command("RegisterProduct", f"sku-{i}", product(f"sku-{i}")))
                 for i in range(events // 4)]
    return {
        "events: phase d's mix": [value for _, value in generate(events, max(1, events // 10))],
        "events: the golden corpus, current versions": [
            raw for raw in corpus if b'"OrderPlaced"' not in raw or b'"schema_version": 2' in raw
        ] * max(1, events // 13),
        "events: OrderPlaced v1 (upcast)": [GOLDEN.joinpath("OrderPlaced.v1.json").read_bytes()]
        * events,
        "commands: Restock, PlaceOrder, RegisterProduct": commands,
    }


def _per_message_us(parse: Callable[[bytes], Any], messages: list[bytes], kept: int) -> float:
    """Each parse's result dropped at once, or, with `kept`, held until that many are parsed
    (as `agents.event_log` holds a batch), so the cyclic garbage collector walks them."""
    held = []
    started = time.process_time()
    for raw in messages:
        parsed = parse(raw)
        if kept:
            held.append(parsed)
            if len(held) == kept:
                held = []
    return (time.process_time() - started) / len(messages) * 1e6


def measure(events: int, rounds: int) -> list[dict[str, Any]]:
    found = []
    made = samples(events)
    made[f"events: phase d's mix, kept {KEPT:,} at a time"] = made["events: phase d's mix"]
    for name, messages in made.items():
        model = Command if name.startswith("commands") else Event
        kept = KEPT if "kept" in name else 0
        variants = {"models": model.model_validate_json,
                    "parse": parse_command if model is Command else parse_event}
        best = {variant: min(_per_message_us(parse, messages, kept) for _ in range(rounds))
                for variant, parse in variants.items()}
        found.append({"messages": name, "count": len(messages),
                      "models_us": round(best["models"], 3), "parse_us": round(best["parse"], 3),
                      "ratio": round(best["models"] / best["parse"], 2)})
    result = orjson.dumps({"command_id": "0b6f9a3c-2d41-4e8a-9c57-1f3e5a7b9d20",
                           "type": "Restock", "status": "accepted", "aggregate_id": "sku-1",
                           "version": 3, "positions": [{"partition": 1, "offset": 42}]})
    results = [result] * events
    found.append({"messages": "command results (one model, no Python validator)",
                  "count": events, "models_us": round(min(
                      _per_message_us(CommandResult.model_validate_json, results, 0)
                      for _ in range(rounds)), 3)})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    found = measure(args.events, args.rounds)
    print(f"{'messages':50} {'models µs':>10} {'parse µs':>9} {'ratio':>6}")
    for row in found:
        print(f"{row['messages']:50} {row['models_us']:10} {row.get('parse_us', ''):>9} "
              f"{row.get('ratio', ''):>6}")
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-parse.json"
    out.write_text(json.dumps({"commit": commit_of(ROOT), "rounds": args.rounds,
                               "load_average_1m": [load, os.getloadavg()[0]],
                               "parses": found}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
