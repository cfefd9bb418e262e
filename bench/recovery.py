"""Phase h: seconds to restore a view from its changelog after the worker's state is wiped.

One worker folds N `ProductRegistered` events, produced straight to the event log (N
distinct skus, each at version 1, as the command handler would write them). It is then
restarted three times: once keeping its state (the baseline: a start with nothing to restore),
then twice after its data dir is removed: A, Faust's own recovery alone
(`SHOPSTREAM_BULK_RESTORE_FROM=off`), and B, the bulk restore (streams/restore.py). Each time is
from the process start until `/ready` answers 200 and a seeded sample of rows reads back; after
each, the worker's databases must hold exactly N rows. While B runs, /metrics is read for the
restore's gauge and /ready must answer 503 until the restore is done.
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
BULK_RESTORE_FROM = 10_000  # B's threshold, the default
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
                  wipe: bool) -> tuple[float, float, list[str], dict[str, Any]]:
    """Stop the worker, wipe its state if asked, start it: seconds to ready, to the sample
    read back, the sampled rows that did not read back as registered, and what /metrics and
    /ready said meanwhile."""
    worker.stop()
    if wipe:
        shutil.rmtree(worker.data_dir)
    started = time.monotonic()
    worker.start()
    watching = asyncio.ensure_future(watch(http, worker))
    try:
        to_ready = await ready(http, worker, 1800)
    finally:
        watching.cancel()
    [watched] = await asyncio.gather(watching, return_exceptions=True)
    seen: dict[str, Any] = watched if isinstance(watched, dict) else {}
    async with http.get(f"{worker.url}/metrics") as response:
        metrics = await response.text()
    seen["restore_rows"] = gauge(metrics, "shopstream_restore_rows")
    seen["restore_rows_per_s"] = gauge(metrics, "shopstream_restore_rows_per_second")
    seen["restore_cpu_seconds"] = gauge(metrics, "shopstream_restore_cpu_seconds")
    problems = await read_sample(http, worker.url, sample)
    return to_ready, time.monotonic() - started, problems, seen


async def watch(http: aiohttp.ClientSession, worker: Worker) -> dict[str, Any]:
    """Until cancelled: the largest restore gauge /metrics showed, and /ready's answers while
    it showed records remaining (all must be 503)."""
    seen: dict[str, Any] = {"max_remaining": 0, "ready_while_restoring": []}
    try:
        while True:
            try:
                async with http.get(f"{worker.url}/metrics") as response:
                    text = await response.text()
                remaining = gauge(text, "shopstream_restore_remaining_records")
                if remaining:
                    seen["max_remaining"] = max(seen["max_remaining"], remaining)
                    async with http.get(f"{worker.url}/ready") as response:
                        seen["ready_while_restoring"].append(response.status)
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    except asyncio.CancelledError:
        seen["ready_while_restoring"] = sorted(set(seen["ready_while_restoring"]))
        return seen


def gauge(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


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
    log.info("recovery: %d rows folded in %.1f s", total, fill_seconds)
    holding = {"rss_mb": rss_mb(worker), "peak_rss_mb": peak_rss_mb(worker)}
    sample = [sku_of(n) for n in random.Random(seed).sample(range(total), min(SAMPLE, total))]
    _, warm, warm_problems, _ = await restart(http, worker, sample, wipe=False)
    found: dict[str, Any] = {}
    for name, bulk in (("faust", "off"), ("bulk", str(BULK_RESTORE_FROM))):
        worker.settings["BULK_RESTORE_FROM"] = bulk
        log.info("recovery: wiping the worker's state, restoring with %s", name)
        to_ready, to_readable, problems, seen = await restart(http, worker, sample, wipe=True)
        memory = {"rss_mb": rss_mb(worker), "peak_rss_mb": peak_rss_mb(worker)}
        worker.stop()
        count = stored_rows(worker.data_dir, VIEWS["products"].table_name)
        log.info("recovery: %s restored %d rows in %.1f s", name, count, to_readable)
        found[name] = {
            "ok": not problems and count == total,
            "ready_seconds": round(to_ready, 2),
            "readable_seconds": round(to_readable, 2),
            "rows_per_s": round(total / to_readable),
            "rows_per_s_beyond_a_restart": (round(total / (to_readable - warm))
                                            if to_readable > warm else None),
            "rows_restored": count,
            "sample_problems": problems[:5],
            "bulk_restore_rows": seen.get("restore_rows"),
            "bulk_restore_rows_per_s": seen.get("restore_rows_per_s"),
            "bulk_restore_rows_per_cpu_s": (
                round(seen["restore_rows"] / seen["restore_cpu_seconds"])
                if seen.get("restore_cpu_seconds") else None),
            "restore_gauge_max_remaining": seen.get("max_remaining"),
            "ready_statuses_while_restoring": seen.get("ready_while_restoring"),
            "restore_log": [line for line in worker.log_tail(5000).splitlines()
                            if "bulk restore:" in line][-6:],
            "worker": memory,
        }
    bulk = found["bulk"]
    return {
        "ok": (not warm_problems and found["faust"]["ok"] and bulk["ok"]
               and bulk["ready_statuses_while_restoring"] in ([], [503])),
        "rows": total,
        "fill_seconds": round(fill_seconds, 1),
        "restart_keeping_state_seconds": round(warm, 2),
        "restore_ready_seconds": bulk["ready_seconds"],
        "restore_readable_seconds": bulk["readable_seconds"],
        "rows_per_s": bulk["rows_per_s"],
        "rows_per_s_beyond_a_restart": bulk["rows_per_s_beyond_a_restart"],
        "rows_restored": bulk["rows_restored"],
        "bulk_restore_rows_per_s": bulk["bulk_restore_rows_per_s"],
        "bulk_restore_rows_per_cpu_s": bulk["bulk_restore_rows_per_cpu_s"],
        "faust_rows_per_s": found["faust"]["rows_per_s"],
        "bulk_over_faust": round(bulk["rows_per_s"] / found["faust"]["rows_per_s"], 1),
        "restores": found,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "sample_checked": len(sample),
        "worker_holding_rows": holding,
        "worker-1_peak_rss_mb": max((v for v in (holding["peak_rss_mb"],
                                                 *(r["worker"]["peak_rss_mb"]
                                                   for r in found.values()))
                                     if v is not None), default=None),
    }
