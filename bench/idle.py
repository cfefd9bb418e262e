"""What an idle worker costs: CPU seconds per wall second of workers with nothing to do.

`python -m bench.idle [--checkout DIR] [--workers N]`: N workers of this repository and, with
--checkout, N of DIR beside them on one local Kafka (an A/B in one run), ready and then left
alone; each worker's CPU over a minute. Writes bench/results/<time>-idle.json.
"""

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.pipeline_tools import Cluster, scratch_kafka
from bench.trace import commit_of
from tests.integration.cluster import ROOT

SETTLE_S = 20.0


async def measure(bootstrap: str, workdir: Path, checkouts: list[Path], workers: int,
                  partitions: int, seconds: float) -> list[dict[str, object]]:
    clusters = [Cluster(bootstrap, workdir, count=workers, partitions=partitions, checkout=c)
                for c in checkouts]
    try:
        for cluster in clusters:
            await cluster.start()
        await asyncio.sleep(SETTLE_S)
        processes = [(cluster, psutil.Process(worker.process.pid))
                     for cluster in clusters for worker in cluster.workers
                     if worker.process is not None]
        before = [sum(process.cpu_times()[:2]) for _, process in processes]
        started = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - started
        return [{"checkout": str(cluster.checkout), "commit": commit_of(cluster.checkout),
                 "cpu_s_per_s": round((sum(process.cpu_times()[:2]) - cpu) / wall, 4),
                 "load_average_1m": os.getloadavg()[0]}
                for (cluster, process), cpu in zip(processes, before, strict=True)]
    finally:
        for cluster in clusters:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, help="an A/B's other side, run alongside")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    checkouts = [ROOT, *([args.checkout.resolve()] if args.checkout else [])]
    with scratch_kafka("bench-idle-") as (kafka, workdir):
        found = asyncio.run(measure(kafka.bootstrap, workdir, checkouts, args.workers,
                                    args.partitions, args.seconds))
    print(f"{'checkout':40} {'commit':14} CPU s/s")
    for row in found:
        print(f"{row['checkout']:40} {row['commit']:14} {row['cpu_s_per_s']}")
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-idle.json"
    out.write_text(json.dumps({"workers": found, "seconds": args.seconds}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
