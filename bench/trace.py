"""`python -m bench.trace`: where a command waits, hop by hop, through two real workers.

Open loop `Restock`s at each rate; every command is followed through the topics by a plain
consumer, each hop read from a Kafka record's create time (stamped by the producer that sent
it) or from when this process saw it:

    produced        when this process was to send the command (its schedule: a late sender
                    is charged to the pipeline, not hidden)
    decided         the handler sends its event (the event's create time)
    result produced the handler sends the result, after its batch's events are acknowledged
                    and the states stored (the result's create time)
    result seen     the result reaches a consumer here
    folded          the products view writes the row at the command's version (its
                    changelog record's create time)
    changelog seen  that changelog record reaches a consumer here
    http visible    `GET /views/products/{sku}?min_version=` answers with the version (a
                    sample of the commands, each asked as soon as the command is sent)

Create times have millisecond resolution; all clocks are this machine's.
"""

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from bench import latency
from bench.options import add_settings, settings_of
from bench.pipeline_tools import Cluster, command, percentiles, scratch_kafka, started_producer
from tables.registry import VIEWS
from tests.integration.cluster import ROOT

HOPS = {
    "produced -> decided": ("produced", "decided"),
    "decided -> result produced": ("decided", "result_produced"),
    "result produced -> result seen": ("result_produced", "result_seen"),
    "decided -> folded": ("decided", "folded"),
    "folded -> changelog seen": ("folded", "changelog_seen"),
    "produced -> result seen": ("produced", "result_seen"),
    "produced -> changelog seen": ("produced", "changelog_seen"),
    "produced -> http visible": ("produced", "http_visible"),
}
RESULTS_DIR = ROOT / "bench" / "results"
WAIT_TIMEOUT = 120.0
log = logging.getLogger(__name__)


@dataclass
class Trace:
    sku: str
    version: int
    stamps: dict[str, float] = field(default_factory=dict)


class Tracer(latency.Tail):
    """Follows every traced command through the commands' events, results and the view."""

    def __init__(self, bootstrap: str, cluster: Cluster) -> None:
        self.events = cluster.topic("events")
        self.results = cluster.topic("command-results")
        self.changelog = f"{cluster.prefix}-{VIEWS['products'].table_name}-changelog"
        super().__init__(bootstrap, [self.events, self.results, self.changelog])
        self.traces: dict[str, Trace] = {}
        self.by_sku: dict[str, list[str]] = {}  # command ids not yet folded, by version

    def expect(self, command_id: str, sku: str, version: int, produced: float) -> None:
        self.traces[command_id] = Trace(sku, version, {"produced": produced})
        self.by_sku.setdefault(sku, []).append(command_id)

    def unfinished(self) -> int:
        return sum(1 for trace in self.traces.values()
                   if "result_seen" not in trace.stamps or "changelog_seen" not in trace.stamps)

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=10000)
            now = time.time()
            for tp, records in batches.items():
                for record in records:
                    if record.value is not None:
                        self._seen(tp.topic, record.key, record.value, record.timestamp / 1000,
                                   now)

    def _seen(self, topic: str, key: bytes, value: bytes, created: float, now: float) -> None:
        if topic == self.events:
            trace = self.traces.get(orjson.loads(value)["command_id"])
            if trace is not None:
                trace.stamps.setdefault("decided", created)
        elif topic == self.results:
            trace = self.traces.get(key.decode())
            if trace is not None and "result_seen" not in trace.stamps:
                trace.stamps.update(result_produced=created, result_seen=now)
        else:
            sku = key.decode()
            waiting = self.by_sku.get(sku)
            if not waiting:
                return
            version = orjson.loads(value)["versions"].get(sku, 0)
            while waiting and self.traces[waiting[0]].version <= version:
                self.traces[waiting.pop(0)].stamps.update(folded=created, changelog_seen=now)


async def http_visible(http: aiohttp.ClientSession, url: str, trace: Trace) -> None:
    """Ask for the row at the command's version as soon as the command is sent."""
    query = f"{url}/views/products/{trace.sku}?min_version={trace.version}&timeout=30"
    try:
        async with http.get(query) as response:
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return
    if response.status == 200 and not body.get("meta", {}).get("stale", True):
        trace.stamps["http_visible"] = time.time()


async def traced_rate(cluster: Cluster, producer: AIOKafkaProducer, http: aiohttp.ClientSession,
                      tracer: Tracer, catalog: latency.Catalog, rate: float, count: int,
                      http_every: int, chooser: random.Random) -> dict[str, Any]:
    """`count` Restocks at `rate` a second on schedule; each hop's percentiles once all are
    seen (or WAIT_TIMEOUT passes)."""
    tracer.traces.clear()
    skus = catalog.skus
    probes = []
    start, wall = time.monotonic() + 0.05, time.time() + 0.05
    sent = 0
    while sent < count:
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
        due = min(count, int((time.monotonic() - start) * rate) + 1)
        for index in range(sent, due):  # a late sender catches up at once, stamped on time
            sku = chooser.choice(skus)
            message = command("Restock", sku, {"quantity": 1})
            catalog.version[sku] += 1
            catalog.on_hand[sku] += 1
            tracer.expect(message["command_id"], sku, catalog.version[sku], wall + index / rate)
            await producer.send(cluster.topic("commands"), orjson.dumps(message),
                                key=sku.encode())
            if index % http_every == 0:
                url = cluster.urls[index // http_every % len(cluster.urls)]
                probes.append(asyncio.create_task(
                    http_visible(http, url, tracer.traces[message["command_id"]])))
        sent = due
    sending = time.monotonic() - start
    await latency.wait_for(lambda: tracer.unfinished() == 0, WAIT_TIMEOUT)
    await asyncio.gather(*probes)
    traces = list(tracer.traces.values())
    hops = {}
    for name, (begin, end) in HOPS.items():
        spans = [t.stamps[end] - t.stamps[begin] for t in traces
                 if begin in t.stamps and end in t.stamps]
        hops[name] = percentiles(spans)
    seen = [t.stamps["changelog_seen"] for t in traces if "changelog_seen" in t.stamps]
    carried = len(seen) / (max(seen) - wall) if seen else None  # to the last one visible
    figures = {"rate_per_s": rate, "commands": count, "sent_per_s": round(count / sending, 1),
               "carried_per_s": round(carried, 1) if carried else None,
               "unfinished": tracer.unfinished(), "http_probes": len(probes),
               "load_average_1m": round(os.getloadavg()[0], 2), "hops_ms": hops}
    log.info("rate %s: %s", rate, json.dumps(figures))
    return figures


def profiling(cluster: Cluster, directory: Path | None,
              rate: float) -> list[subprocess.Popen[bytes]]:
    """py-spy on every worker, idle samples included, until interrupted."""
    if directory is None:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    return [subprocess.Popen([str(py_spy), "record", "--pid", str(worker.process.pid),
                              "--format", "raw", "--rate", "50", "--idle", "--output",
                              str(directory / f"{rate:g}-{worker.name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for worker in cluster.workers if worker.process is not None]


def stop_profiling(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(timeout=60)


async def trace(cluster: Cluster, rates: list[float], count: int, products: int,
                http_every: int, profile: Path | None = None) -> list[dict[str, Any]]:
    await cluster.start()
    producer = await started_producer(cluster.bootstrap)
    results = latency.Results(cluster.bootstrap, cluster.topic("command-results"))
    await results.start()
    tracer = Tracer(cluster.bootstrap, cluster)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            catalog = await latency.register(cluster, producer, results, http, products)
            await tracer.start()
            chooser = random.Random(18)
            await traced_rate(cluster, producer, http, tracer, catalog, 100.0, 200,
                              http_every, chooser)  # warm-up, not reported
            runs = []
            for rate in rates:
                profilers = profiling(cluster, profile, rate)
                try:
                    runs.append(await traced_rate(cluster, producer, http, tracer, catalog, rate,
                                                  count, http_every, chooser))
                finally:
                    stop_profiling(profilers)
            return runs
    finally:
        await tracer.stop()
        await results.stop()
        await producer.stop()
        cluster.stop()


def commit_of(checkout: Path) -> str:
    done = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def table(runs: list[dict[str, Any]]) -> str:
    lines = [f"{'hop':32} " + " ".join(f"{str(r['rate_per_s']) + '/s p50':>12} {'p99':>8}"
                                         for r in runs)]
    for hop in HOPS:
        cells = []
        for run in runs:
            figures = run["hops_ms"][hop]
            cells.append(f"{figures['p50_ms'] or '-':>12} {figures['p99_ms'] or '-':>8}")
        lines.append(f"{hop:32} " + " ".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="200,1000", help="commands/s, comma-separated")
    parser.add_argument("--commands", type=int, default=600, help="traced commands per rate")
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--http-every", type=int, default=20,
                        help="ask the view over HTTP for one command in this many")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="run the workers from this checkout (an A/B's other side)")
    add_settings(parser, "the workers", "BATCH_WITHIN=0.002")
    parser.add_argument("--profile", type=Path, help="py-spy each worker at each rate into "
                        "this directory (see `python -m bench.profile`)")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/<time>-"
                        "trace.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rates = [float(rate) for rate in args.rates.split(",")]
    settings = settings_of(parser, args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = commit_of(args.checkout)  # what the workers start from, before anyone commits
    with scratch_kafka("bench-trace-") as (kafka, workdir):
        cluster = Cluster(kafka.bootstrap, workdir, count=args.workers,
                          partitions=args.partitions, checkout=args.checkout, settings=settings)
        runs = asyncio.run(trace(cluster, rates, args.commands, args.products, args.http_every,
                                 args.profile))
    found = {"started": stamp, "commit": commit,
             "checkout": str(args.checkout.resolve()), "settings": settings,
             "workers": f"{args.workers} x {args.partitions} partitions",
             "cores": os.cpu_count(), "runs": runs}
    out = args.out or RESULTS_DIR / f"{stamp}-trace.json"
    out.write_text(json.dumps(found, indent=2) + "\n")
    print(table(runs))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
