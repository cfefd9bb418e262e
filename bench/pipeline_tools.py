"""What the pipeline phases share: real workers on a fresh prefix, messages, waits, figures."""

import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ops.verify import partitions_of
from tests.integration.cluster import (
    ROOT,
    Kafka,
    Worker,
    free_kafka_port,
    outside_settings,
    wait_until_all_ready,
)

PAGE_SIZE = 4096


@dataclass
class Cluster:
    """Worker processes in one consumer group on a prefix of their own."""

    bootstrap: str
    workdir: Path
    count: int = 2
    partitions: int = 4
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:10]}")
    workers: list[Worker] = field(default_factory=list)
    checkout: Path = ROOT
    """The repository the workers run from: this one, or an A/B's other side."""
    settings: dict[str, str] = field(default_factory=dict)
    """More SHOPSTREAM_* variables for every worker, by name without the prefix."""

    async def start(self) -> None:
        self.workers = [Worker(name=f"worker-{n}", bootstrap=self.bootstrap, prefix=self.prefix,
                               data_dir=self.workdir / self.prefix / f"worker-{n}",
                               partitions=self.partitions, settings=self.settings)
                        for n in range(1, self.count + 1)]
        for worker in self.workers:
            start_in(worker, self.checkout)
        await wait_until_all_ready(self.workers)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    @property
    def urls(self) -> list[str]:
        return [worker.url for worker in self.workers]

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"


@contextmanager
def scratch_kafka(prefix: str) -> Iterator[tuple[Kafka, Path]]:
    """A local Kafka on a free port and a directory for workers, both gone afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        kafka = Kafka(directory=Path(scratch) / "kafka", port=free_kafka_port())
        kafka.start()
        try:
            yield kafka, Path(scratch) / "workers"
        finally:
            kafka.stop()


def start_in(worker: Worker, checkout: Path) -> None:
    """`worker.start()`, its process run from `checkout` instead of this repository."""
    if checkout.resolve() == ROOT:
        worker.start()
        return
    env = {**outside_settings(), "SHOPSTREAM_BROKER": f"kafka://{worker.bootstrap}",
           "SHOPSTREAM_TOPIC_PREFIX": worker.prefix,
           "SHOPSTREAM_PARTITIONS": str(worker.partitions),
           "SHOPSTREAM_WEB_HOST": "127.0.0.1", "SHOPSTREAM_WEB_PORT": str(worker.port),
           "SHOPSTREAM_DATA_DIR": str(worker.data_dir), "PYTHONDONTWRITEBYTECODE": "1",
           **{f"SHOPSTREAM_{name}": value for name, value in worker.settings.items()}}
    worker.data_dir.parent.mkdir(parents=True, exist_ok=True)
    with worker.log_path.open("ab") as log:
        worker.process = subprocess.Popen(
            [sys.executable, "-m", worker.module, "worker", "--loglevel", "info"],
            cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT)


def _proc_field(pid: int, name: str) -> float | None:
    """A memory figure of /proc/<pid>/status in MB; None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def peak_rss_mb(worker: Worker) -> float | None:
    return _proc_field(worker.process.pid, "VmHWM") if worker.process else None


def rss_mb(worker: Worker) -> float | None:
    return _proc_field(worker.process.pid, "VmRSS") if worker.process else None


def reset_peak_rss(workers: Iterable[Worker]) -> None:
    """Start each worker's peak RSS afresh (Linux: writing 5 to clear_refs resets VmHWM)."""
    for worker in workers:
        if worker.process is not None:
            try:
                Path(f"/proc/{worker.process.pid}/clear_refs").write_text("5")
            except OSError:
                pass


def cpu_seconds(worker: Worker) -> float | None:
    """User plus system CPU time the worker process has used so far."""
    if worker.process is None:
        return None
    try:
        fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(workers: Iterable[Worker]) -> dict[str, float | None]:
    return {f"{worker.name}_peak_rss_mb": peak_rss_mb(worker) for worker in workers}


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def command(kind: str, aggregate_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"command_id": str(uuid.uuid4()), "type": kind, "aggregate_id": aggregate_id,
            "payload": payload}


def event(kind: str, aggregate_id: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """An event envelope as the command handler writes it, for an aggregate no command touches."""
    command_id = str(uuid.uuid4())
    return {"event_id": str(uuid.uuid5(uuid.UUID(command_id), "0")), "type": kind,
            "schema_version": 1, "aggregate_id": aggregate_id, "version": version,
            "command_id": command_id, "correlation_id": command_id, "occurred_at": iso_now(),
            "payload": payload}


def product(sku: str) -> dict[str, Any]:
    """The RegisterProduct / ProductRegistered payload every benchmark product gets."""
    return {"name": f"bench {sku}", "price": "2.50", "stock": 1}


async def started_producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2,
                                max_batch_size=256 * 1024)
    await producer.start()
    return producer


async def send_all(producer: AIOKafkaProducer, topic: str,
                   messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """Produce keyed messages as fast as the producer takes them; waits for every ack."""
    pending: list[asyncio.Future[Any]] = []
    count = 0
    for key, value in messages:
        pending.append(await producer.send(topic, orjson.dumps(value), key=key.encode()))
        count += 1
        if len(pending) >= PAGE_SIZE:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    return count


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def folded(http: aiohttp.ClientSession, urls: Sequence[str], projection: str,
                 ends: dict[int, int]) -> bool:
    """Whether the workers, together, have folded `projection` up to `ends` on every partition."""
    reached: dict[int, int] = {}
    for url in urls:
        try:
            async with http.get(f"{url}/lag") as response:
                if response.status != 200:
                    return False
                lag = await response.json()
        except aiohttp.ClientError:
            return False
        for partition, behind in lag["projections"].get(projection, {}).items():
            if behind["applied"] is not None:
                reached[int(partition)] = max(reached.get(int(partition), -1), behind["applied"])
    return all(reached.get(p, -1) >= end - 1 for p, end in ends.items() if end > 0)


async def wait_folded(http: aiohttp.ClientSession, urls: Sequence[str], projection: str,
                      ends: dict[int, int], timeout: float) -> float | None:
    """Seconds until folded, or None if not within `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await folded(http, urls, projection, ends):
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    return None


def percentiles(samples: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p95, p99 and max of samples in seconds, as milliseconds (nearest rank)."""
    ordered = sorted(samples)
    figures: dict[str, float | int | None] = {"count": len(ordered)}
    for q in (50, 95, 99):
        rank = max(1, math.ceil(q / 100 * len(ordered))) - 1
        figures[f"p{q}_ms"] = round(ordered[rank] * 1000, 2) if ordered else None
    figures["max_ms"] = round(ordered[-1] * 1000, 2) if ordered else None
    return figures


def verify(bootstrap: str, prefix: str, urls: Sequence[str],
           expected: Callable[[str], bool] = lambda _: False) -> dict[str, Any]:
    """`python -m streams verify` on the prefix: the views against a fold of the whole log.
    Differences `expected` accepts (what the bench itself did outside the service's rules)
    are counted apart and do not fail the check."""
    env = {**os.environ, "SHOPSTREAM_BROKER": f"kafka://{bootstrap}",
           "SHOPSTREAM_TOPIC_PREFIX": prefix}
    arguments = [arg for url in urls for arg in ("--url", url)]
    done = subprocess.run([sys.executable, "-m", "streams", "verify", *arguments], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1800, check=False)
    return judged(done.returncode, done.stdout.strip().splitlines(), done.stderr, expected)


def judged(returncode: int, lines: list[str], stderr: str,
           expected: Callable[[str], bool]) -> dict[str, Any]:
    """`verify`'s outcome from its exit code and output: a line per difference, then the summary."""
    found = lines[:-1]
    unexpected = [line for line in found if not expected(line)]
    return {"ok": returncode == 0 or bool(found and not unexpected),
            "summary": lines[-1] if lines else stderr[-500:],
            "differences": unexpected[:5], "expected_differences": len(found) - len(unexpected)}
