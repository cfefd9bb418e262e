"""Phase h: seconds to restore a view from its changelog after the worker's state is wiped.

One worker folds N `ProductRegistered` events, produced straight to the event log (N
distinct skus, each at version 1, as the command handler would write them). It is then
restarted twice: once keeping its state (the baseline: a start with nothing to restore),
once after its data dir is removed. Each time is from the process start until `/ready`
answers 200 and a seeded sample of rows reads back.
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
FAUST_OFFSET_KEY = b"__faust\x00offset__"  # each partition database records its changelog offset
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
            count += sum(1 for key in database.keys() if key != FAUST_OFFSET_KEY)
        finally:
            database.close()
    return count


async def measure(bootstrap: str, workdir: Path, quick: bool, rows: int | None = None,
                  partitions: int = 4, seed: int = 8) -> dict[str, Any]:
    total = rows or (50_000 if quick else 1_000_000)
    cluster = Cluster(bootstrap, workdir, count=1, partitions=partitions)
    await cluster.start()
    [worker] = cluster.workers
    try:
        async with aiohttp.ClientSession() as http:
            return await _restore(cluster, worker, http, total, seed)
    finally:
        cluster.stop()


async def restart(http: aiohttp.ClientSession, worker: Worker, sample: list[str],
                  wipe: bool) -> tuple[float, float, list[str]]:
    """Stop the worker, wipe its state if asked, start it: seconds to ready, to the sample
    read back, and the sampled rows that did not read back as registered."""
    worker.stop()
    if wipe:
        shutil.rmtree(worker.data_dir)
    started = time.monotonic()
    worker.start()
    to_ready = await ready(http, worker, 1800)
    problems = await read_sample(http, worker.url, sample)
    return to_ready, time.monotonic() - started, problems


async def _restore(cluster: Cluster, worker: Worker, http: aiohttp.ClientSession, total: int,
                   seed: int) -> dict[str, Any]:
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
    sample = [sku_of(n) for n in random.Random(seed).sample(range(total), min(SAMPLE, total))]
    _, warm, warm_problems = await restart(http, worker, sample, wipe=False)
    to_ready, to_readable, problems = await restart(http, worker, sample, wipe=True)
    restored = {"rss_mb": rss_mb(worker), "peak_rss_mb": peak_rss_mb(worker)}
    log.info("recovery: restored in %.1f s, a restart keeping state took %.1f s",
             to_readable, warm)
    worker.stop()
    count = stored_rows(worker.data_dir, VIEWS["products"].table_name)
    return {
        "ok": not problems and not warm_problems and count == total,
        "rows": total,
        "fill_seconds": round(fill_seconds, 1),
        "restart_keeping_state_seconds": round(warm, 2),
        "restore_ready_seconds": round(to_ready, 2),
        "restore_readable_seconds": round(to_readable, 2),
        "rows_per_s": round(total / to_readable),
        "rows_per_s_beyond_a_restart": (round(total / (to_readable - warm))
                                        if to_readable > warm else None),
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
