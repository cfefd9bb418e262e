"""How long a worker takes to start: from its process start to `/ready` answering 200.

`python -m bench.start [--checkout DIR] [--rounds N]`: one local Kafka; per round and per
checkout (this repository, and DIR for an A/B, taking turns), one worker on a fresh prefix
started three ways: first (its topics made, no state), again after a clean stop (its state
kept), and again after a SIGKILL. Nothing else runs meanwhile. Writes
bench/results/<time>-start.json.
"""

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp

from bench.pipeline_tools import scratch_kafka, start_in
from bench.recovery import ready
from bench.trace import commit_of
from tests.integration.cluster import ROOT, Worker

STARTS = ("first", "after a stop", "after kill -9")
READY_TIMEOUT = 180.0


async def until_ready(worker: Worker, checkout: Path) -> float:
    """Start the worker; seconds until its /ready answers 200."""
    started = time.monotonic()
    start_in(worker, checkout)
    async with aiohttp.ClientSession() as http:
        await ready(http, worker, READY_TIMEOUT)
    return time.monotonic() - started


async def one_round(bootstrap: str, workdir: Path, checkout: Path,
                    partitions: int) -> dict[str, float]:
    name = f"start-{uuid4().hex[:8]}"
    worker = Worker(name, bootstrap, name, workdir / name, partitions=partitions)
    seconds = {}
    try:
        seconds["first"] = await until_ready(worker, checkout)
        worker.stop()
        seconds["after a stop"] = await until_ready(worker, checkout)
        worker.kill()
        seconds["after kill -9"] = await until_ready(worker, checkout)
    finally:
        worker.stop()
    return {start: round(value, 2) for start, value in seconds.items()}


async def measure(bootstrap: str, workdir: Path, checkouts: list[Path], rounds: int,
                  partitions: int) -> list[dict[str, Any]]:
    found = []
    for number in range(rounds):
        for checkout in checkouts:
            seconds = await one_round(bootstrap, workdir, checkout, partitions)
            found.append({"round": number, "checkout": str(checkout),
                          "commit": commit_of(checkout), "seconds": seconds,
                          "load_average_1m": os.getloadavg()[0]})
            print(f"round {number} {checkout}: {seconds}", flush=True)
    return found


def medians(found: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    by_checkout: dict[str, dict[str, float]] = {}
    for checkout in dict.fromkeys(row["checkout"] for row in found):
        rows = [row["seconds"] for row in found if row["checkout"] == checkout]
        by_checkout[checkout] = {start: statistics.median(row[start] for row in rows)
                                 for start in STARTS}
    return by_checkout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, help="an A/B's other side, taking turns")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    checkouts = [ROOT, *([args.checkout.resolve()] if args.checkout else [])]
    with scratch_kafka("bench-start-") as (kafka, workdir):
        found = asyncio.run(measure(kafka.bootstrap, workdir, checkouts, args.rounds,
                                    args.partitions))
    summary = medians(found)
    print(f"{'checkout':40} " + " ".join(f"{start:>14}" for start in STARTS) + "  (median s)")
    for checkout, seconds in summary.items():
        print(f"{checkout:40} " + " ".join(f"{seconds[start]:>14}" for start in STARTS))
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-start.json"
    out.write_text(json.dumps({"partitions": args.partitions, "runs": found,
                               "median_seconds": summary}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
