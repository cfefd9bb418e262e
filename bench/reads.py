"""Phase g: HTTP view reads, on the owning worker and through a forwarding one.

The load runs in a child process (`python -m bench.reads`), so the harness's own event loop
(and the ingest it may be producing) does not slow the client down. Each of `concurrency`
tasks reads random keys over one bounded connection pool and checks every answer: 200, the
expected row, and served by the key's owner.
"""

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from bench.latency import Catalog
from bench.pipeline_tools import (
    Cluster,
    cpu_seconds,
    end_offsets,
    event,
    memory,
    percentiles,
    product,
    reset_peak_rss,
    send_all,
    wait_folded,
)
from tests.integration.cluster import ROOT

CONCURRENCY = 32
log = logging.getLogger(__name__)
WARMUP_SECONDS = 2.0
INGEST_SKUS = 1000


class Ingest:
    """StockAdded events produced straight to the event log for skus no command touches.
    No command handler appended them, so the write model has no state for those skus, and
    `verify` says so (`unrecorded`)."""

    def __init__(self, cluster: Cluster, producer: AIOKafkaProducer, skus: int) -> None:
        self.cluster = cluster
        self.producer = producer
        self.version = {f"ingest-{n:05d}": 1 for n in range(skus)}
        self.chooser = random.Random(7)

    @staticmethod
    def unrecorded(difference: str) -> bool:
        """Whether a `verify` line is the write model lacking an ingest sku's state."""
        return difference.startswith("product-state/ingest-") and ": stored nothing," in difference

    async def register(self, http: aiohttp.ClientSession) -> None:
        await send_all(self.producer, self.cluster.topic("events"),
                       ((sku, event("ProductRegistered", sku, 1, product(sku)))
                        for sku in self.version))
        await self.wait(http, 300)

    def _next(self) -> tuple[str, dict[str, Any]]:
        sku = self.chooser.choice(list(self.version))
        self.version[sku] += 1
        return sku, event("StockAdded", sku, self.version[sku], {"quantity": 1})

    async def wait(self, http: aiohttp.ClientSession, timeout: float) -> float | None:
        ends = await end_offsets(self.cluster.bootstrap, self.cluster.topic("events"))
        return await wait_folded(http, self.cluster.urls, "products", ends, timeout)

    async def capacity(self, http: aiohttp.ClientSession, events: int) -> float | None:
        """Rough events/s the workers fold: a burst produced at once, timed until folded."""
        start = time.monotonic()
        await send_all(self.producer, self.cluster.topic("events"),
                       (self._next() for _ in range(events)))
        if await self.wait(http, 600) is None:
            return None
        return events / (time.monotonic() - start)

    async def steady(self, rate: float, until: asyncio.Event) -> float:
        """Produce `rate` events a second on schedule until told to stop; the rate achieved."""
        start, sent = time.monotonic(), 0
        topic = self.cluster.topic("events")
        while not until.is_set():
            due = int((time.monotonic() - start) * rate) + 1
            while sent < due:
                sku, value = self._next()
                await self.producer.send(topic, orjson.dumps(value), key=sku.encode())
                sent += 1
            await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
        return sent / (time.monotonic() - start)


async def owners(http: aiohttp.ClientSession, url: str, skus: list[str]) -> dict[str, str]:
    """Which worker serves each sku, from the answers' meta.served_by."""
    served: dict[str, str] = {}
    for sku in skus:
        async with http.get(f"{url}/views/products/{sku}") as response:
            served[sku] = (await response.json())["meta"]["served_by"].rstrip("/")
    return served


async def load(url: str, expected: dict[str, list[Any]], duration: float, concurrency: int,
               seed: int) -> dict[str, Any]:
    """Read random keys of `expected` (sku -> [on_hand, owner]) for `duration` after a warm-up."""
    keys = sorted(expected)
    latencies: list[float] = []
    failures: list[str] = []
    served: dict[str, int] = {}
    start = time.monotonic()
    measure_from, stop_at = start + WARMUP_SECONDS, start + WARMUP_SECONDS + duration

    async def reader(http: aiohttp.ClientSession, chooser: random.Random) -> None:
        while (began := time.monotonic()) < stop_at:
            sku = chooser.choice(keys)
            try:
                async with http.get(f"{url}/views/products/{sku}") as response:
                    status, body = response.status, await response.read()
            except aiohttp.ClientError as exc:
                status, body = 0, repr(exc).encode()
            if began < measure_from:
                continue
            latencies.append(time.monotonic() - began)
            problem = check(sku, status, body, expected[sku])
            if problem:
                failures.append(problem)
            else:
                by = orjson.loads(body)["meta"]["served_by"].rstrip("/")
                served[by] = served.get(by, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(reader(http, random.Random(seed + n)) for n in range(concurrency)))
    return {"requests": len(latencies), "per_s": round(len(latencies) / duration, 1),
            "failures": len(failures), "first_failures": failures[:3], "served_by": served,
            "latency": percentiles(latencies)}


def check(sku: str, status: int, body: bytes, expected: list[Any]) -> str | None:
    if status != 200:
        return f"{sku}: {status} {body[:200]!r}"
    answer = orjson.loads(body)
    on_hand, owner = expected
    if answer["data"]["sku"] != sku or answer["data"]["on_hand"] != on_hand:
        return f"{sku}: served {answer['data']}, expected on_hand {on_hand}"
    if answer["meta"]["served_by"].rstrip("/") != owner:
        return f"{sku}: served by {answer['meta']['served_by']}, owner {owner}"
    return None


async def run_load(url: str, expected: dict[str, list[Any]], duration: float, workdir: Path,
                   cluster: Cluster) -> dict[str, Any]:
    """One load in a child process, with the CPU it and the workers used meanwhile."""
    keys_file = workdir / "read-keys.json"
    keys_file.write_bytes(orjson.dumps(expected))
    before_workers = {w.name: cpu_seconds(w) for w in cluster.workers}
    before_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.reads", "--url", url, "--keys", str(keys_file),
        "--duration", str(duration), "--concurrency", str(CONCURRENCY),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the read load exited with {child.returncode}")
    after_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures: dict[str, Any] = json.loads(out)
    wall = time.monotonic() - began  # the child's start-up and warm-up included
    client_cpu = (after_client.ru_utime + after_client.ru_stime
                  - before_client.ru_utime - before_client.ru_stime)
    figures["client_cpu_share"] = round(client_cpu / wall, 2)
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    for worker in cluster.workers:
        used, before = cpu_seconds(worker), before_workers[worker.name]
        if used is not None and before is not None:
            figures[f"{worker.name}_cpu_share"] = round((used - before) / wall, 2)
    return figures


async def measure(cluster: Cluster, producer: AIOKafkaProducer, http: aiohttp.ClientSession,
                  catalog: Catalog, ingest: Ingest, capacity: float | None, quick: bool,
                  workdir: Path) -> dict[str, Any]:
    """Phase g: reads through worker 1 of keys it owns and keys worker 2 owns, idle and busy."""
    duration = 5.0 if quick else 15.0
    entry = cluster.workers[0].url
    if await ingest.wait(http, 300) is None:
        raise RuntimeError("the products view did not catch up before the reads")
    served = await owners(http, entry, catalog.skus)
    keys = {
        "owner": {s: [catalog.on_hand[s], o] for s, o in served.items() if o == entry},
        "forwarded": {s: [catalog.on_hand[s], o] for s, o in served.items() if o != entry},
    }
    reset_peak_rss(cluster.workers)
    runs: dict[str, Any] = {}
    for ingesting in (False, True):
        if ingesting and capacity is None:
            runs["ingest"] = "skipped: no capacity measured"
            continue
        for route, expected in keys.items():
            stop = asyncio.Event()
            rate = capacity / 2 if ingesting and capacity else None
            producing = asyncio.create_task(ingest.steady(rate, stop)) if rate else None
            figures = await run_load(entry, expected, duration, workdir, cluster)
            if producing is not None:
                stop.set()
                figures["ingest_per_s"] = round(await producing, 1)
                figures["ingest_per_s_target"] = round(rate or 0, 1)
            name = f"{'ingest' if ingesting else 'idle'}_{route}"
            log.info("reads %s: %s", name, figures)
            runs[name] = figures
    loads = [r for r in runs.values() if isinstance(r, dict)]
    return {
        "ok": all(r["failures"] == 0 and r["requests"] > 0 for r in loads),
        "entry": entry,
        "client": f"aiohttp, {CONCURRENCY} connections, one child process, random keys",
        "keys": {route: len(found) for route, found in keys.items()},
        "seconds_per_run": duration,
        "runs": runs,
        **memory(cluster.workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="read random product rows for a while")
    parser.add_argument("--url", required=True)
    parser.add_argument("--keys", required=True, type=Path, help="JSON: sku -> [on_hand, owner]")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    expected = orjson.loads(arguments.keys.read_bytes())
    if not expected:
        sys.exit("no keys to read")
    figures = asyncio.run(load(arguments.url, expected, arguments.duration,
                               arguments.concurrency, arguments.seed))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
