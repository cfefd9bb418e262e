"""`python -m bench.trace_http`: where a `POST /commands` waits, hop by hop.

Requests as `bench.pipeline_http` offers them (half `Restock`, half `PlaceOrder`, a pool of
clients over two workers), each timed by the client and by the create times of its Kafka
records, which a plain consumer reads: the command on the commands topic (the worker has
parsed the request and handed the command to its producer), its result on the results
topic (the command handler has decided and its events are acknowledged), the result's row
on the results view's changelog (the results agent has written the row a waiting request
reads). The hops: sent → command produced (HTTP in, parse, produce), → result produced
(the command path), → result recorded (the results agent), → answered (the waiter woken,
the forward from the result's owner when there is one, the response, the client).
"""

import argparse
import asyncio
import json
import logging
import os
import random
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import latency
from bench.options import add_settings, settings_of
from bench.pipeline_http import Offered
from bench.pipeline_tools import Cluster, command, percentiles, scratch_kafka, started_producer
from bench.trace import RESULTS_DIR, commit_of
from tests.integration.cluster import ROOT

HOPS = ("sent", "command produced", "result produced", "result recorded", "answered")


class Hops(latency.Tail):
    """The create time of each traced command's record on each topic it passes."""

    def __init__(self, bootstrap: str, cluster: Cluster) -> None:
        self.hop = {cluster.topic("commands"): "command produced",
                    cluster.topic("command-results"): "result produced",
                    f"{cluster.prefix}-command-results-v1-changelog": "result recorded"}
        super().__init__(bootstrap, list(self.hop))
        self.stamps: dict[str, dict[str, float]] = {}

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=10000)
            for tp, records in batches.items():
                hop = self.hop[tp.topic]
                for record in records:
                    if record.value is None or record.key is None:
                        continue
                    command_id = (orjson.loads(record.value)["command_id"]
                                  if hop == "command produced" else record.key.decode())
                    self.stamps.setdefault(command_id, {}).setdefault(hop,
                                                                      record.timestamp / 1000)


class Timed(Offered):
    """Offered requests, each with the wall-clock times it was sent and answered."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.times: dict[str, tuple[float, float]] = {}

    async def post(self, http: aiohttp.ClientSession, scheduled: float,
                   body: dict[str, Any], url: str) -> None:
        sent = time.time()
        await super().post(http, scheduled, body, url)
        self.times[body["command_id"]] = (sent, time.time())


async def trace(cluster: Cluster, rate: float, seconds: float, clients: int) -> dict[str, Any]:
    await cluster.start()
    producer = await started_producer(cluster.bootstrap)
    results = latency.Results(cluster.bootstrap, cluster.topic("command-results"))
    await results.start()
    hops = Hops(cluster.bootstrap, cluster)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as http:
            catalog = await latency.register(cluster, producer, results, http, 200)
            chooser = random.Random(18)
            stock = Offered(cluster.urls, catalog.skus, chooser)
            await asyncio.gather(*(stock.post(http, time.monotonic(),
                                              command("Restock", sku, {"quantity": 1_000_000}),
                                              cluster.urls[0]) for sku in catalog.skus))
            await hops.start()
            await Offered(cluster.urls, catalog.skus, chooser).run(http, rate, 5.0, clients)
            timed = Timed(cluster.urls, catalog.skus, chooser)
            elapsed = await timed.run(http, rate, seconds, clients)
            await asyncio.sleep(2.0)  # the last records' way to the plain consumer
    finally:
        await hops.stop()
        await results.stop()
        await producer.stop()
        cluster.stop()
    gaps: dict[str, list[float]] = {f"{a} → {b}": [] for a, b in pairwise(HOPS)}
    whole = []
    for command_id, (sent, answered) in timed.times.items():
        stamps = {"sent": sent, "answered": answered, **hops.stamps.get(command_id, {})}
        if all(hop in stamps for hop in HOPS):
            for a, b in pairwise(HOPS):
                gaps[f"{a} → {b}"].append(stamps[b] - stamps[a])
            whole.append(answered - sent)
    return {"rate_per_s": rate, "requests": timed.sent, "traced": len(whole),
            "answered_per_s": round(len(timed.latencies) / elapsed, 1),
            "statuses": timed.statuses, "load_average_1m": round(os.getloadavg()[0], 2),
            "hops_ms": {hop: percentiles(samples) for hop, samples in gaps.items()},
            "sent → answered": percentiles(whole)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.trace_http", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=150.0, help="requests/s")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=64, help="concurrent requests at most")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="run the workers from this checkout (an A/B's other side)")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/<time>-"
                        "trace-http.json)")
    add_settings(parser, "the workers", "LINGER_MS=0")
    args = parser.parse_args()
    settings = settings_of(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = commit_of(args.checkout)
    with scratch_kafka("bench-trace-http-") as (kafka, workdir):
        cluster = Cluster(kafka.bootstrap, workdir, checkout=args.checkout, settings=settings)
        run = asyncio.run(trace(cluster, args.rate, args.seconds, args.clients))
    found = {"started": stamp, "commit": commit, "checkout": str(args.checkout.resolve()),
             "settings": settings, "clients": args.clients, "cores": os.cpu_count(), **run}
    out = args.out or RESULTS_DIR / f"{stamp}-trace-http.json"
    out.write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    for hop, figures in run["hops_ms"].items():
        print(f"{hop:40} p50 {figures['p50_ms']:>9} ms  p99 {figures['p99_ms']:>9} ms")
    whole = run["sent → answered"]
    print(f"{'sent → answered':40} p50 {whole['p50_ms']:>9} ms  p99 {whole['p99_ms']:>9} ms")
    print(f"{run['answered_per_s']}/s answered of {args.rate:g}/s offered, {run['statuses']}, "
          f"load {run['load_average_1m']}; written to {out}")


if __name__ == "__main__":
    main()
