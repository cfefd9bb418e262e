"""Phase h: seconds to restore a view from its changelog after the worker's state is wiped.

One worker folds N `ProductRegistered` events, produced straight to the event log (N
distinct skus, each at version 1, as the command handler would write them). Then it is
stopped, its data dir removed and a fresh process started on the same prefix: the time is
from that start until `/ready` answers 200 and a seeded sample of rows reads back.
"""

import asyncio
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
from rocksdict import AccessType, Rdict

from bench.pipeline_tools import (
    Cluster,
    end_offsets,
    event,
    peak_rss_mb,
    product,
    rss_mb,
    send_all,
    started_producer,
    wait_folded,
)
from tables.registry import VIEWS
from tests.integration.cluster import Worker

SAMPLE = 200
log = logging.getLogger(__name__)


def sku_of(index: int) -> str:
    return f"restore-{index:07d}"


async def ready(http: aiohttp.ClientSession, worker: Worker, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not worker.alive():
            raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
        try:
            async with http.get(f"{worker.url}/ready") as response:
                if response.status == 200:
                    return time.monotonic() - start
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{worker.name} not ready after {timeout} s:\n{worker.log_tail()}")


async def read_sample(http: aiohttp.ClientSession, url: str, skus: list[str]) -> list[str]:
    """Every sampled row that does not read back as registered (empty: all good)."""
    async def one(sku: str) -> str | None:
        async with http.get(f"{url}/views/products/{sku}") as response:
            if response.status != 200:
                return f"{sku}: {response.status}"
            data = (await response.json())["data"]
        expected = product(sku)
        found = (data["sku"], data["name"], data["price"], data["on_hand"], data["version"])
        if found != (sku, expected["name"], expected["price"], expected["stock"], 1):
            return f"{sku}: {data}"
        return None

    return [problem for problem in await asyncio.gather(*(one(s) for s in skus)) if problem]


def stored_rows(data_dir: Path, table: str) -> int:
    """Keys in the worker's RocksDB databases of `table` (the worker must be stopped)."""
    count = 0
    for path in sorted(data_dir.rglob(f"{table}-*.db")):
        database = Rdict(str(path), access_type=AccessType.read_only())
        try:
            count += sum(1 for _ in database.keys())
        finally:
            database.close()
    return count


async def measure(bootstrap: str, workdir: Path, quick: bool, rows: int | None = None,
                  partitions: int = 4, seed: int = 8) -> dict[str, Any]:
    total = rows or (50_000 if quick else 1_000_000)
    cluster = Cluster(bootstrap, workdir, count=1, partitions=partitions)
    began = time.monotonic()
    await cluster.start()
    empty_start = time.monotonic() - began
    [worker] = cluster.workers
    try:
        async with aiohttp.ClientSession() as http:
            return await _restore(cluster, worker, http, total, empty_start, seed)
    finally:
        cluster.stop()


async def _restore(cluster: Cluster, worker: Worker, http: aiohttp.ClientSession, total: int,
                   empty_start: float, seed: int) -> dict[str, Any]:
    producer = await started_producer(cluster.bootstrap)
    try:
        filling = time.monotonic()
        await send_all(producer, cluster.topic("events"),
                       ((sku_of(n), event("ProductRegistered", sku_of(n), 1, product(sku_of(n))))
                        for n in range(total)))
    finally:
        await producer.stop()
    ends = await end_offsets(cluster.bootstrap, cluster.topic("events"))
    if await wait_folded(http, cluster.urls, "products", ends, 600 + total / 200) is None:
        raise RuntimeError(f"the worker did not fold {total} events:\n{worker.log_tail()}")
    fill_seconds = time.monotonic() - filling
    log.info("recovery: %d rows folded in %.1f s; wiping the worker's state", total, fill_seconds)
    holding = {"rss_mb": rss_mb(worker), "peak_rss_mb": peak_rss_mb(worker)}
    worker.stop()
    shutil.rmtree(worker.data_dir)
    sample = [sku_of(n) for n in random.Random(seed).sample(range(total), min(SAMPLE, total))]
    started = time.monotonic()
    worker.start()
    to_ready = await ready(http, worker, 1800)
    problems = await read_sample(http, worker.url, sample)
    to_readable = time.monotonic() - started
    restored = {"rss_mb": rss_mb(worker), "peak_rss_mb": peak_rss_mb(worker)}
    worker.stop()
    count = stored_rows(worker.data_dir, VIEWS["products"].table_name)
    return {
        "ok": not problems and count == total,
        "rows": total,
        "fill_seconds": round(fill_seconds, 1),
        "empty_start_seconds": round(empty_start, 2),
        "restore_ready_seconds": round(to_ready, 2),
        "restore_readable_seconds": round(to_readable, 2),
        "rows_per_s": round(total / to_readable),
        "rows_per_s_net_of_empty_start": round(total / max(0.01, to_readable - empty_start)),
        "rows_restored": count,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "sample_checked": len(sample),
        "sample_problems": problems[:5],
        "worker_holding_rows": holding,
        "worker_after_restore": restored,
        "worker-1_peak_rss_mb": max((v for v in (holding["peak_rss_mb"],
                                                restored["peak_rss_mb"]) if v is not None),
                                    default=None),
    }
