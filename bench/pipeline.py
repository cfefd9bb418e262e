"""The pipeline half of the benchmark: latency (f), HTTP reads (g) and recovery (h).

Workers are black boxes (environment, Kafka topics, HTTP), so a rerun measures whatever
code the repository holds. `python -m bench.pipeline [--quick]` starts its own local Kafka.
"""

import argparse
import asyncio
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench import latency, reads, recovery
from bench.pipeline_tools import Cluster, memory, started_producer
from tests.integration.cluster import Kafka, free_kafka_port

PRODUCTS = {True: 200, False: 1000}
CAPACITY_BURST = {True: 10_000, False: 50_000}
log = logging.getLogger(__name__)


def run(bootstrap: str, workdir: Path, quick: bool, capacity: float | None, *,
        workers: int = 2, partitions: int = 4, recovery_rows: int | None = None,
        phases: str = "fgh") -> dict[str, dict]:
    """Phases f, g and h against the Kafka at `bootstrap`; each answer says if its check held."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(bootstrap, workdir, count=workers, partitions=partitions)
    return asyncio.run(_run(cluster, quick, capacity, recovery_rows, phases))


async def _run(cluster: Cluster, quick: bool, capacity: float | None, recovery_rows: int | None,
               phases: str) -> dict[str, dict]:
    found: dict[str, dict] = {}
    if "f" in phases or "g" in phases:
        found.update(await _front(cluster, quick, capacity))
    if "h" in phases:
        found["h"] = await _recovery(cluster, quick, recovery_rows)
    return found


async def _front(cluster: Cluster, quick: bool, capacity: float | None) -> dict[str, dict]:
    """Phases f and g, on one cluster: g reads the rows f's commands wrote."""
    try:
        await cluster.start()
        return await _latency_and_reads(cluster, quick, capacity)
    except (RuntimeError, TimeoutError, OSError, LookupError) as exc:
        log.exception("phases f and g failed")
        failed = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                  **memory(cluster.workers)}
        return {"f": failed, "g": failed}
    finally:
        cluster.stop()


async def _recovery(cluster: Cluster, quick: bool, rows: int | None) -> dict[str, Any]:
    try:
        return await recovery.measure(cluster.bootstrap, cluster.workdir, quick, rows,
                                      partitions=cluster.partitions)
    except (RuntimeError, TimeoutError, OSError, LookupError) as exc:
        log.exception("phase h failed")
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}


async def _latency_and_reads(cluster: Cluster, quick: bool,
                             capacity: float | None) -> dict[str, dict]:
    producer = await started_producer(cluster.bootstrap)
    results = latency.Results(cluster.bootstrap, cluster.topic("command-results"))
    await results.start()
    try:
        async with aiohttp.ClientSession() as http:
            catalog = await latency.register(cluster, producer, results, http, PRODUCTS[quick])
            ingest = reads.Ingest(cluster, producer, reads.INGEST_SKUS)
            await ingest.register(http)
            capacity_note = "given"
            if capacity is None:
                capacity = await ingest.capacity(http, CAPACITY_BURST[quick])
                capacity_note = "measured here: a burst of StockAdded events, produced to folded"
                log.info("capacity: %s events/s", capacity)
            rates = [*latency.FIXED_RATES, *([capacity / 2] if capacity else [])]
            f = await latency.measure(cluster, producer, http, catalog, results, rates, quick,
                                      expected=ingest.unrecorded)
            g = await reads.measure(cluster, producer, http, catalog, ingest, capacity, quick,
                                    cluster.workdir)
    finally:
        await results.stop()
        await producer.stop()
    f["capacity_events_per_s"] = round(capacity, 1) if capacity else None
    f["capacity_source"] = capacity_note
    return {"f": f, "g": g}


def main() -> None:
    parser = argparse.ArgumentParser(description="latency, HTTP reads and recovery benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs")
    parser.add_argument("--capacity", type=float, help="the projector's events/s, if known")
    parser.add_argument("--workdir", type=Path, help="where Kafka and the workers keep data")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for f and g")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument("--recovery-rows", type=int, help="rows for h (default 1,000,000; "
                        "50,000 with --quick)")
    parser.add_argument("--phases", default="fgh",
                        help="fg and/or h (f and g run together: g reads what f wrote)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as scratch:
        workdir = arguments.workdir or Path(scratch)
        kafka = Kafka(directory=workdir / "kafka", port=free_kafka_port())
        try:
            kafka.start()
            found = run(kafka.bootstrap, workdir / "workers", arguments.quick, arguments.capacity,
                        workers=arguments.workers, partitions=arguments.partitions,
                        recovery_rows=arguments.recovery_rows, phases=arguments.phases)
        finally:
            kafka.stop()
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
