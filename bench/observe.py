"""Watching a consumer process from outside: its group's committed offsets, CPU and peak RSS.

A phase's rate runs from the first commit observed to the commit that covers the whole
topic, so start-up is left out and nothing the process says about itself is trusted.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

POLL = 0.1


@dataclass(frozen=True)
class Sample:
    at: float
    done: int
    cpu: float


@dataclass(frozen=True)
class Measured:
    events: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")


class PhaseError(Exception):
    """A phase that could not be measured; its message says why."""


async def committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    """Events of `topic` the group has committed; 0 while its coordinator is not there yet."""
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:
        return 0
    return sum(meta.offset for tp, meta in offsets.items()
               if tp.topic == topic and meta.offset > 0)


def cpu_seconds(process: psutil.Process) -> float:
    """The process's CPU and its children's: those that ran and were reaped, and those
    running now (a view version built in a process of its own)."""
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
    return float(total)


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of the process's resident set (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


async def watch(pids: Sequence[int], admin: AIOKafkaAdminClient, group: str, topic: str,
                total: int, timeout: float) -> Measured:
    """Wait until `group` has committed all `total` events of `topic`, and measure the way:
    CPU summed over the processes `pids`, the highest peak RSS among them."""
    processes = [psutil.Process(pid) for pid in pids]
    first: Sample | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in processes):
            raise PhaseError(f"a process exited at {first.done if first else 0}/{total}")
        done = await committed(admin, group, topic)
        sample = Sample(time.monotonic(), done, sum(cpu_seconds(p) for p in processes))
        if first is None and done > 0:
            first = sample
        if done >= total:
            if first is None or first.done >= total:
                raise PhaseError("all events came in one commit: too few events to time")
            return Measured(total - first.done, sample.at - first.at, sample.cpu - first.cpu,
                            max(peak_rss_mb(pid) for pid in pids))
        await asyncio.sleep(POLL)
    raise PhaseError(f"timed out after {timeout:.0f}s at {done}/{total} events")


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}
