"""Bulk restore: table partitions far behind their changelog, read in large fetches into RocksDB
write batches before Faust's recovery starts, which then finds nothing (or a short tail) to read.

Faust restores one record at a time, about 9,000 rows/s. Here one plain consumer is assigned
every changelog partition that is at least `Settings.bulk_restore_from` records behind (after a
wipe, on a new worker, on a standby far behind), and each `getmany` becomes one write batch per
partition, its offset stored with its rows. `progress` is the one account of a restore: the log
lines (rows, rate, ETA) and the /metrics gauges both read it.
"""

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.faust_patches import TableManager as FaustTableManager
from streams.kafka_clients import client_options
from streams.settings import Settings
from streams.store import Store

# A 64 MB fetch held 190,000 parsed records at once: the worker peaked at 415 MB.
FETCH_BYTES = 16 * 1024 * 1024
PARTITION_FETCH_BYTES = 4 * 1024 * 1024
BATCH_RECORDS = 10_000
FETCH_WAIT_MS = 1000
LOG_EVERY = 2.0
log = logging.getLogger(__name__)


@dataclass
class Progress:
    """How far the worker's latest bulk restore has come."""

    partitions: int = 0
    total: int = 0
    done: int = 0
    started: float = 0.0
    finished: float | None = None
    cpu_started: float = 0.0
    cpu_seconds: float = 0.0
    """The worker process's CPU time while the restore ran (all its threads)."""

    def begin(self, partitions: int, total: int) -> None:
        self.partitions, self.total, self.done = partitions, total, 0
        self.started, self.finished = time.monotonic(), None
        self.cpu_started, self.cpu_seconds = time.process_time(), 0.0

    def finish(self) -> None:
        self.finished = time.monotonic()
        self.cpu_seconds = time.process_time() - self.cpu_started

    @property
    def running(self) -> bool:
        return self.started > 0 and self.finished is None

    @property
    def remaining(self) -> int:
        return max(self.total - self.done, 0) if self.running else 0

    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def rate(self) -> float:
        seconds = self.seconds()
        return self.done / seconds if seconds > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate()
        return self.remaining / rate if rate > 0 else None

    def line(self) -> str:
        if self.finished is not None:
            return (f"bulk restore: {self.done:,} rows of {self.partitions} changelog partitions "
                    f"in {self.seconds():.1f} s: {self.rate():,.0f} rows/s, "
                    f"{self.cpu_seconds:.1f} CPU-s")
        eta = self.eta()
        return (f"bulk restore: {self.done:,} of {self.total:,} rows, {self.rate():,.0f} rows/s, "
                f"ETA {'?' if eta is None else f'{eta:.1f} s'}")


progress = Progress()


@dataclass
class Plan:
    start: int
    end: int


async def restore(stores: Mapping[TP, object], current: Callable[[], bool]) -> None:
    """Restore in bulk those of `stores`' partitions that are far behind; stop writing as soon
    as `current()` turns false (a newer rebalance)."""
    settings = Settings.from_env()
    threshold = settings.bulk_restore_from
    ours = {tp: store for tp, store in stores.items() if isinstance(store, Store)}
    if threshold is None or not ours:
        return
    consumer = AIOKafkaConsumer(
        **client_options(settings), enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_BYTES, max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        fetch_max_wait_ms=FETCH_WAIT_MS)
    await consumer.start()
    try:
        plans = await plan(consumer, ours, threshold)
        if plans and current():
            await read(consumer, ours, plans, current)
    finally:
        await consumer.stop()


async def plan(consumer: AIOKafkaConsumer, stores: Mapping[TP, Store],
               threshold: int) -> dict[TP, Plan]:
    """Each partition at least `threshold` records behind its changelog's end, and where its
    reading starts: after the stored offset, or at the log's start if that is further."""
    partitions = {TopicPartition(tp.topic, tp.partition): tp for tp in stores}
    # Assigned (and paused), every topic's leaders come in one metadata request; unassigned,
    # the offset request learns one topic per retry, 100 ms apart: a second for the app's tables.
    consumer.assign(list(partitions))
    consumer.pause(*partitions)
    ends = await consumer.end_offsets(list(partitions))
    starts = await consumer.beginning_offsets(list(partitions))
    plans = {}
    for partition, tp in partitions.items():
        stored = stores[tp].persisted_offset(tp)
        start = max(starts[partition], 0 if stored is None else stored + 1)
        if ends[partition] - start >= threshold:
            plans[tp] = Plan(start, ends[partition])
    return plans


async def read(consumer: AIOKafkaConsumer, stores: Mapping[TP, Store], plans: Mapping[TP, Plan],
               current: Callable[[], bool]) -> None:
    pending = {TopicPartition(tp.topic, tp.partition): tp for tp in plans}
    consumer.assign(list(pending))
    for partition, tp in pending.items():
        consumer.seek(partition, plans[tp].start)
    progress.begin(len(pending), sum(p.end - p.start for p in plans.values()))
    log.info("bulk restore: %s rows to read from %d changelog partitions",
             f"{progress.total:,}", len(pending))
    logged = time.monotonic()
    try:
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=FETCH_WAIT_MS,
                                             max_records=BATCH_RECORDS)
            if not current():
                log.info("bulk restore: stopped by a rebalance after %s rows",
                         f"{progress.done:,}")
                return
            for partition, records in fetched.items():
                tp = pending[partition]
                stores[tp].write_restored(tp, records)
                progress.done += len(records)
            for partition, tp in list(pending.items()):
                if await consumer.position(partition) >= plans[tp].end:
                    consumer.pause(partition)
                    del pending[partition]
            if time.monotonic() - logged >= LOG_EVERY:
                logged = time.monotonic()
                log.info("%s", progress.line())
    finally:
        progress.finish()
    log.info("%s", progress.line())


class TableManager(FaustTableManager):
    """The app's table manager: its recovery restores in bulk first."""

    async def restore_in_bulk(self, stores: Mapping[TP, object],
                              current: Callable[[], bool]) -> None:
        await restore(stores, current)
