"""Phase f: command → view-visible latency, open loop at fixed rates, through real workers.

The commands are `Restock`s of registered products: one hop, command handler → `StockAdded`
→ the `products` view. A command counts as visible when a plain consumer of the view's
changelog sees the sku's row reach the version the command gives it; its latency runs from
the time it was scheduled to be sent, so a harness or producer falling behind is charged to
the pipeline rather than hidden (no coordinated omission).
"""

import asyncio
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.pipeline_tools import (
    Cluster,
    command,
    end_offsets,
    memory,
    percentiles,
    product,
    reset_peak_rss,
    send_all,
    verify,
    wait_folded,
)
from ops.verify import partitions_of
from tables.registry import VIEWS

FIXED_RATES = (200.0, 1000.0, 5000.0)
log = logging.getLogger(__name__)
WARMUP_RATE, WARMUP_SECONDS = 100.0, 3.0
SETTLE_TIMEOUT = 900.0
# Past either bound the backlog is growing without bound; sending on would only measure
# how long the run was, and leave a queue for the next rate to wait behind.
GIVE_UP_SECONDS, MAX_BACKLOG = 10.0, 5000


@dataclass
class Catalog:
    """The registered products, with the version and stock each must end with."""

    version: dict[str, int] = field(default_factory=dict)
    on_hand: dict[str, int] = field(default_factory=dict)

    @property
    def skus(self) -> list[str]:
        return sorted(self.version)


class Tail:
    """A plain consumer of every partition of some topics, from their ends when started."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                         enable_auto_commit=False, fetch_max_wait_ms=20)
        await self.consumer.start()
        partitions = [TopicPartition(topic, p) for topic in self.topics
                      for p in await partitions_of(self.bootstrap, topic)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self.consumer.position(tp)
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.consumer is not None:
            await self.consumer.stop()

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=10000)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        self.seen(record.key, record.value, now)

    def seen(self, key: bytes, value: bytes, now: float) -> None:
        raise NotImplementedError


class Visibility(Tail):
    """Each expected (sku, version) resolved when the view's changelog shows the sku there."""

    def __init__(self, bootstrap: str, changelog: str) -> None:
        super().__init__(bootstrap, [changelog])
        self.pending: dict[str, deque[tuple[int, float]]] = {}
        self.waiting = 0
        self.latencies: list[float] = []

    def expect(self, sku: str, version: int, scheduled: float) -> None:
        self.pending.setdefault(sku, deque()).append((version, scheduled))
        self.waiting += 1

    def seen(self, key: bytes, value: bytes, now: float) -> None:
        sku = key.decode()
        queue = self.pending.get(sku)
        if not queue:
            return
        version = orjson.loads(value)["versions"].get(sku, 0)
        while queue and queue[0][0] <= version:
            self.latencies.append(now - queue.popleft()[1])
            self.waiting -= 1

    def oldest(self) -> float | None:
        """When the longest-waiting command still unseen was scheduled."""
        return min((queue[0][1] for queue in self.pending.values() if queue), default=None)


class Results(Tail):
    """Command results for the command ids we sent."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap, [topic])
        self.wanted: set[str] = set()
        self.status: dict[str, str] = {}
        self.scheduled: dict[str, float] = {}
        self.latencies: list[float] = []

    def expect(self, command_id: str, scheduled: float | None = None) -> None:
        self.wanted.add(command_id)
        if scheduled is not None:
            self.scheduled[command_id] = scheduled

    def seen(self, key: bytes, value: bytes, now: float) -> None:
        command_id = key.decode()
        if command_id in self.wanted and command_id not in self.status:
            self.status[command_id] = orjson.loads(value)["status"]
            scheduled = self.scheduled.pop(command_id, None)
            if scheduled is not None:
                self.latencies.append(now - scheduled)

    def missing(self) -> int:
        return len(self.wanted) - len(self.status)

    def rejected(self) -> int:
        return sum(1 for status in self.status.values() if status != "accepted")


async def wait_for(condition: Any, timeout: float) -> float | None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            return None
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def register(cluster: Cluster, producer: AIOKafkaProducer, results: Results,
                   http: aiohttp.ClientSession, count: int) -> Catalog:
    """Register `count` products by command and wait until the view has them all."""
    catalog = Catalog()
    messages = []
    for index in range(count):
        sku = f"sku-{index:06d}"
        message = command("RegisterProduct", sku, product(sku))
        results.expect(message["command_id"])
        messages.append((sku, message))
        catalog.version[sku], catalog.on_hand[sku] = 1, product(sku)["stock"]
    await send_all(producer, cluster.topic("commands"), messages)
    if await wait_for(lambda: results.missing() == 0, 300) is None or results.rejected():
        raise RuntimeError(f"registering products: {results.missing()} results missing, "
                           f"{results.rejected()} rejected")
    ends = await end_offsets(cluster.bootstrap, cluster.topic("events"))
    if await wait_folded(http, cluster.urls, "products", ends, 300) is None:
        raise RuntimeError("the products view did not fold the registrations in 300 s")
    log.info("registered %d products", count)
    return catalog


async def open_loop(producer: AIOKafkaProducer, topic: str, catalog: Catalog,
                    visibility: Visibility, results: Results, rate: float, duration: float,
                    chooser: random.Random) -> dict[str, Any]:
    """Send `rate` Restock commands a second for `duration` on schedule, whatever comes back,
    unless the backlog passes GIVE_UP_SECONDS or MAX_BACKLOG."""
    total = max(1, round(rate * duration))
    skus = catalog.skus
    acks = []
    worst_lateness = 0.0
    start = time.monotonic() + 0.05
    sent = 0
    checked = start
    while sent < total:
        if time.monotonic() - checked > 0.5:
            checked = time.monotonic()
            oldest = visibility.oldest()
            if visibility.waiting > MAX_BACKLOG or (
                    oldest is not None and checked - oldest > GIVE_UP_SECONDS):
                break
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while sent < due:
            scheduled = start + sent / rate
            sku = chooser.choice(skus)
            message = command("Restock", sku, {"quantity": 1})
            catalog.version[sku] += 1
            catalog.on_hand[sku] += 1
            visibility.expect(sku, catalog.version[sku], scheduled)
            results.expect(message["command_id"], scheduled)
            acks.append(await producer.send(topic, orjson.dumps(message), key=sku.encode()))
            worst_lateness = max(worst_lateness, time.monotonic() - scheduled)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    elapsed = time.monotonic() - start
    await asyncio.gather(*acks)
    return {"target_per_s": rate, "commands": sent, "sending_s": round(elapsed, 2),
            "stopped_early_after_s": round(elapsed, 1) if sent < total else None,
            "achieved_per_s": round(sent / elapsed, 1) if elapsed > 0 else None,
            "send_lateness_max_ms": round(worst_lateness * 1000, 1)}


async def measure_rate(cluster: Cluster, producer: AIOKafkaProducer, catalog: Catalog,
                       visibility: Visibility, results: Results, rate: float, duration: float,
                       drain_timeout: float, chooser: random.Random) -> dict[str, Any]:
    visibility.latencies, results.latencies = [], []
    figures = await open_loop(producer, cluster.topic("commands"), catalog, visibility, results,
                              rate, duration, chooser)
    figures["backlog_at_end_of_sending"] = visibility.waiting
    drained = await wait_for(lambda: visibility.waiting == 0, drain_timeout)
    figures["drained_after_s"] = None if drained is None else round(drained, 2)
    if drained is not None:  # all of them seen: the rate the pipeline actually carried
        figures["carried_per_s"] = round(figures["commands"] / (figures["sending_s"] + drained), 1)
    figures["backlog_after_drain_timeout"] = visibility.waiting
    figures["visible"] = len(visibility.latencies)
    figures["latency"] = percentiles(visibility.latencies)
    figures["result_latency"] = percentiles(results.latencies)
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    log.info("latency at %.0f commands/s: %s", rate, figures)
    return figures


async def measure(cluster: Cluster, producer: AIOKafkaProducer, http: aiohttp.ClientSession,
                  catalog: Catalog, results: Results, rates: list[float], quick: bool,
                  seed: int = 6,
                  expected: Callable[[str], bool] = lambda _: False) -> dict[str, Any]:
    """Phase f on a running cluster whose catalog is registered; `verify` differences that
    `expected` accepts do not fail it (see `pipeline_tools.verify`)."""
    changelog = f"{cluster.prefix}-{VIEWS['products'].table_name}-changelog"  # Faust's naming
    visibility = Visibility(cluster.bootstrap, changelog)
    await visibility.start()
    chooser = random.Random(seed)
    duration, drain_timeout = (5.0, 120.0) if quick else (20.0, 300.0)
    reset_peak_rss(cluster.workers)
    runs: list[dict[str, Any]] = []
    try:
        await measure_rate(cluster, producer, catalog, visibility, results, WARMUP_RATE,
                           WARMUP_SECONDS, drain_timeout, chooser)
        for rate in sorted(rates):
            run = await measure_rate(cluster, producer, catalog, visibility, results, rate,
                                     duration, drain_timeout, chooser)
            runs.append(run)
            if run["drained_after_s"] is None:
                break  # what is left would queue behind this backlog and measure it, not itself
    finally:
        await visibility.stop()
    skipped = [rate for rate in sorted(rates) if rate not in {r["target_per_s"] for r in runs}]
    all_results = await wait_for(lambda: results.missing() == 0, SETTLE_TIMEOUT)
    ends = await end_offsets(cluster.bootstrap, cluster.topic("events"))
    settled = await wait_folded(http, cluster.urls, "products", ends, SETTLE_TIMEOUT)
    check = verify(cluster.bootstrap, cluster.prefix, cluster.urls[:1], expected)
    return {
        "ok": all_results is not None and settled is not None and not results.rejected()
        and check["ok"],
        "hop": "Restock -> StockAdded -> products view (one hop)",
        "visibility": f"plain consumer of {changelog}: the sku's row reaching the version",
        "workers": f"{len(cluster.workers)} x {cluster.partitions} partitions",
        "seconds_per_rate": duration,
        "rates": runs,
        "skipped_rates": skipped,
        "results_missing": results.missing(),
        "results_rejected": results.rejected(),
        "verify": check,
        **memory(cluster.workers),
    }
