"""`python -m bench.pipeline_http`: `POST /commands` waiting for each result, through two workers.

Half the commands are `Restock`s of registered products, half `PlaceOrder`s of one of them
(which the saga then confirms or rejects). Requests are offered on a fixed schedule and taken
by a pool of concurrent clients spread over the workers; a request's latency runs from the
time it was scheduled (no coordinated omission), and a 200 (accepted) or 409 (rejected) with
the command's result is an answer, anything else an error. Each rate also reports the CPU
milliseconds an answer cost the workers (together) and this process, the load generator
(`cpu_ms_per_answer`), which a machine shared with other work changes far less than answered/s.
Past capacity a pool of N clients answers at most N / latency a second (`--clients`).

`--soak MINUTES` then offers one rate for that long (`--soak-rate`, or half the most answered/s
of the rates run before it) in windows of `--window` minutes (5), each with its commands/s,
percentiles and the workers' RSS, and RSS sampled every 30 s; the verdict (`bench.soak`)
compares the first window with the last and fits RSS's slope after the first window.
"""

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import latency
from bench.options import add_settings, settings_of
from bench.pipeline_tools import (
    Cluster,
    command,
    cpu_seconds,
    percentiles,
    rss_mb,
    scratch_kafka,
    started_producer,
)
from bench.plots import write_soak
from bench.soak import RssSampler, Soak, verdict, verdict_lines
from bench.trace import RESULTS_DIR, commit_of, profiling, stop_profiling
from tests.integration.cluster import ROOT

log = logging.getLogger(__name__)


class Offered:
    """One rate's requests: each scheduled, taken by a free client, timed from its schedule."""

    def __init__(self, urls: list[str], skus: list[str], chooser: random.Random) -> None:
        self.urls, self.skus, self.chooser = urls, skus, chooser
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.sent = 0

    def body(self) -> dict[str, Any]:
        sku = self.chooser.choice(self.skus)
        if self.sent % 2:
            return command("Restock", sku, {"quantity": 1})
        order = f"order-{self.chooser.getrandbits(64):016x}"
        return command("PlaceOrder", order, {"customer_id": f"cust-{self.sent % 500}",
                                             "lines": [{"sku": sku, "quantity": 1}]})

    async def post(self, http: aiohttp.ClientSession, scheduled: float,
                   body: dict[str, Any], url: str) -> None:
        try:
            async with http.post(f"{url}/commands", json=body) as response:
                answer = await response.json()
                ok = response.status in (200, 409) and answer.get("command_id") == \
                    body["command_id"] and answer.get("status") in ("accepted", "rejected")
                status = str(response.status) if ok else f"error {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = f"error {type(exc).__name__}"
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not status.startswith("error"):
            self.latencies.append(time.monotonic() - scheduled)

    async def run(self, http: aiohttp.ClientSession, rate: float, seconds: float,
                  clients: int) -> float:
        """Offer `rate` requests a second for `seconds` to at most `clients` at once; the
        seconds until the last answer."""
        free = asyncio.Semaphore(clients)
        start = time.monotonic() + 0.05
        tasks = []

        async def one(scheduled: float, body: dict[str, Any], url: str) -> None:
            async with free:
                await self.post(http, scheduled, body, url)

        for index in range(round(rate * seconds)):
            scheduled = start + index / rate
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            tasks.append(asyncio.create_task(
                one(scheduled, self.body(), self.urls[index % len(self.urls)])))
            self.sent += 1
        await asyncio.gather(*tasks)
        return time.monotonic() - start


def figures(offered: Offered, rate: float, elapsed: float,
            cpu: dict[str, float] | None = None) -> dict[str, Any]:
    answered = len(offered.latencies)
    found = {"offered_per_s": rate, "requests": offered.sent,
             "answered_per_s": round(answered / elapsed, 1), "statuses": offered.statuses,
             "latency": percentiles(offered.latencies),
             "load_average_1m": round(os.getloadavg()[0], 2)}
    if cpu is not None and answered:
        found["cpu_ms_per_answer"] = {who: round(seconds * 1000 / answered, 2)
                                      for who, seconds in cpu.items()}
    return found


class CpuUsed:
    """CPU seconds the workers (together) and this process (the load generator) use between
    `start` and `stop`: what a rate costs per answer, whatever else shares the machine."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.started: tuple[float, float] = (0.0, 0.0)

    def now(self) -> tuple[float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        return (sum(cpu_seconds(worker) or 0.0 for worker in self.cluster.workers),
                own.ru_utime + own.ru_stime)

    def start(self) -> None:
        self.started = self.now()

    def stop(self) -> dict[str, float]:
        workers, client = self.now()
        return {"workers": workers - self.started[0], "load_generator": client - self.started[1]}


async def measure(cluster: Cluster, rates: list[float], seconds: float, clients: int,
                  soak: Soak, profile: Path | None = None) -> dict[str, Any]:
    await cluster.start()
    producer = await started_producer(cluster.bootstrap)
    results = latency.Results(cluster.bootstrap, cluster.topic("command-results"))
    await results.start()
    connector = aiohttp.TCPConnector(limit=clients)
    try:
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=60)) as http:
            catalog = await latency.register(cluster, producer, results, http, 200)
            chooser = random.Random(18)
            stock = Offered(cluster.urls, catalog.skus, chooser)  # for every order to come
            await asyncio.gather(*(stock.post(http, time.monotonic(),
                                              command("Restock", sku, {"quantity": 1_000_000}),
                                              cluster.urls[0]) for sku in catalog.skus))
            warmup = Offered(cluster.urls, catalog.skus, chooser)
            await warmup.run(http, rates[0] if rates else 10.0, 5.0, clients)
            runs = []
            for rate in rates:
                offered = Offered(cluster.urls, catalog.skus, chooser)
                profilers = profiling(cluster, profile, rate)
                used = CpuUsed(cluster)
                try:
                    used.start()
                    elapsed = await offered.run(http, rate, seconds, clients)
                    runs.append(figures(offered, rate, elapsed, used.stop()))
                finally:
                    stop_profiling(profilers)
                log.info("POST /commands at %s/s: %s", rate, json.dumps(runs[-1]))
            soaked = await _soak(cluster, http, catalog.skus, chooser, soak, runs, clients,
                                 profile)
    finally:
        await results.stop()
        await producer.stop()
        cluster.stop()
    return {"clients": clients, "seconds_per_rate": seconds, "rates": runs, **soaked}


async def _soak(cluster: Cluster, http: aiohttp.ClientSession, skus: list[str],
                chooser: random.Random, soak: Soak, runs: list[dict[str, Any]], clients: int,
                profile: Path | None) -> dict[str, Any]:
    if not soak.minutes:
        return {"soak": []}
    rate, source = soak.rate_after(runs)
    log.info("soak: %s minutes at %s/s (%s)", soak.minutes, rate, source)
    sampler = RssSampler(cluster.workers)
    sampling = asyncio.create_task(sampler.run())
    profilers = profiling(cluster, profile, rate)
    windows = []
    try:
        for index, minutes in enumerate(soak.windows()):
            offered = Offered(cluster.urls, skus, chooser)
            window = figures(offered, rate, await offered.run(http, rate, minutes * 60, clients))
            window |= {"window": index + 1, "minutes": minutes,
                       "ended_minute": round(sampler.minute(), 2),
                       "rss_mb": {w.name: rss_mb(w) for w in cluster.workers}}
            windows.append(window)
            log.info("soak window %d: %s", index + 1, json.dumps(window))
    finally:
        stop_profiling(profilers)
        sampling.cancel()
    return {"soak": windows, "soak_rate_per_s": rate, "soak_rate_source": source,
            "soak_rss_samples": sampler.samples,
            "soak_verdict": verdict(windows, sampler.samples, soak.window)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_http", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="200,1000", help="requests/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="per rate")
    parser.add_argument("--clients", type=int, default=64, help="concurrent requests at most")
    parser.add_argument("--soak", type=float, default=0.0, metavar="MINUTES",
                        help="after the rates, a soak this long (default none)")
    parser.add_argument("--soak-rate", type=float,
                        help="requests/s for the soak (default: half the most answered/s of "
                             "the rates)")
    parser.add_argument("--window", type=float, default=5.0, help="soak window, minutes")
    parser.add_argument("--profile", type=Path, help="py-spy each worker at each rate and for "
                        "the whole soak into this directory (see `python -m bench.profile`)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="run the workers from this checkout (an A/B's other side)")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/<time>-"
                        "http-commands.json)")
    add_settings(parser, "the workers", "STANDBY_REPLICAS=0")
    args = parser.parse_args()
    settings = settings_of(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = commit_of(args.checkout)  # what the workers start from, before anyone commits
    with scratch_kafka("bench-http-") as (kafka, workdir):
        cluster = Cluster(kafka.bootstrap, workdir, count=args.workers,
                          partitions=args.partitions, checkout=args.checkout,
                          settings=settings)
        rates = [float(r) for r in args.rates.split(",") if r]
        found = asyncio.run(measure(cluster, rates, args.seconds, args.clients,
                                    Soak(args.soak, args.window, args.soak_rate), args.profile))
    found = {"started": stamp, "commit": commit,
             "checkout": str(args.checkout.resolve()),
             "workers": f"{args.workers} x {args.partitions} partitions",
             "settings": settings, "cores": os.cpu_count(), **found}
    out = args.out or RESULTS_DIR / f"{stamp}-http-commands.json"
    out.write_text(json.dumps(found, indent=2) + "\n")
    for run in found["rates"] + found["soak"]:
        print(f"{run['offered_per_s']:>8}/s offered  {run['answered_per_s']:>8}/s answered  "
              f"p50 {run['latency']['p50_ms']} ms  p99 {run['latency']['p99_ms']} ms  "
              f"{run['statuses']}  load {run['load_average_1m']}  "
              f"CPU ms an answer {run.get('cpu_ms_per_answer')}")
    if found["soak"]:
        print(verdict_lines(found["soak_verdict"]))
    print(f"written to {out}")
    chart = write_soak(found, out.with_suffix(".png").with_stem(f"{out.stem}-soak"))
    if chart:
        print(f"chart: {chart}")


if __name__ == "__main__":
    main()
