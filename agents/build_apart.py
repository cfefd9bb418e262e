"""The process a worker starts to build a view version apart (`agents.build_process`).

It folds the worker's partitions as the in-process builder does (the same restore, fold,
changelog, RocksDB and commits, `agents.view_builder.Builder`) until it is at most
HAND_BACK records behind the log's end on every one, then closes their stores and exits
with HANDED_BACK: the worker's builder goes on from the committed offsets. It owns those
stores while it runs. It exits at once when its stdin closes: the worker stopped it (a
rebalance, the version made live here) or died. It holds itself to a share of one core
(`SHOPSTREAM_BUILD_APART_CPU`), pausing between batches: a low priority alone still lets it
take the cores the worker's reads would wake on.
"""

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, NoReturn

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from agents.build_process import HANDED_BACK
from agents.view_builder import Builder, clients
from streams import collector, topics
from streams.app import settings
from tables.view import View

log = logging.getLogger(__name__)
HAND_BACK = 100  # records behind the log's end, on every partition
WINDOW = 1.0  # seconds over which the CPU share is kept
GAINING_EVERY = 10.0  # seconds between two looks at whether the build gains on the log


class Pacer:
    """Holds a process to `share` of one core: after each batch, the pause that brings the
    CPU time it used since its window began down to that share of the time gone by. No
    pause while the build has not gained on the log's end since the last look: under
    traffic faster than the share folds, it would never catch up."""

    def __init__(self, share: float | None, cpu: Callable[[], float] = time.process_time,
                 wall: Callable[[], float] = time.monotonic) -> None:
        self.share, self.cpu, self.wall = share, cpu, wall
        self.began_cpu, self.began_wall = cpu(), wall()
        self.gaining, self.looked_at, self.behind_then = True, wall(), -1

    def pause(self, behind: int) -> float:
        """`behind`: the records between the build's positions and the log's end."""
        if self.behind_then < 0:
            self.behind_then = behind
        elif self.wall() - self.looked_at >= GAINING_EVERY:
            self.gaining = behind < self.behind_then
            self.looked_at, self.behind_then = self.wall(), behind
        if self.share is None or not self.gaining:
            return 0.0
        used, gone = self.cpu() - self.began_cpu, self.wall() - self.began_wall
        wait = max(0.0, used / self.share - gone)
        if gone + wait >= WINDOW:
            self.began_cpu, self.began_wall = self.cpu(), self.wall() + wait
        return wait


class ApartBuilder(Builder):
    """The builder of a child process: fixed partitions, each batch reported."""

    def __init__(self, view: View, report: BinaryIO) -> None:
        super().__init__(view)
        self.report = report

    async def _fold(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]],
                    producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
        unfoldable = self.unfoldable
        await super()._fold(tp, records, producer, consumer)
        last = records[-1]
        self.report.write(orjson.dumps({
            "partition": tp.partition, "offset": last.offset, "at": last.timestamp / 1000,
            "records": len(records), "unfoldable": self.unfoldable - unfoldable}) + b"\n")

    async def build(self, partitions: set[int]) -> None:
        async with clients(self.view) as (consumer, producer):
            await self._assign(consumer, partitions)
            tps = [TopicPartition(topics.events.get_topic_name(), p) for p in sorted(partitions)]
            pacer = Pacer(settings.build_apart_cpu)
            while max(behind := await _behind(consumer, tps), default=0) > HAND_BACK:
                fetched = await consumer.getmany(timeout_ms=200, max_records=settings.batch_size)
                for tp, records in fetched.items():
                    if records:
                        await self._fold(tp, records, producer, consumer)
                        await asyncio.sleep(pacer.pause(sum(behind)))
        for partition in list(self.store.partitions):
            self.store.close(partition)


async def _behind(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> list[int]:
    """Per partition, the records between the position and the log's end."""
    ends = {tp: consumer.highwater(tp) for tp in tps}
    if None in ends.values():
        ends = await consumer.end_offsets(tps)
    return [ends[tp] - await consumer.position(tp) for tp in tps]


def _exit_when_stdin_closes() -> None:
    sys.stdin.buffer.read()
    os._exit(1)


async def run(view: View, partitions: set[int]) -> NoReturn:
    """Build `view` on `partitions` until near the log's end, then exit with HANDED_BACK;
    with 1 if it fails or its stdin closes."""
    report = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything else printed goes to the log, not into the reports
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    collector.set_thresholds(settings.gc_threshold)  # the worker's policy (`streams.app`)
    if settings.gc_freeze:
        collector.freeze_start_up()
    try:
        await ApartBuilder(view, report).build(partitions)
    except Exception:
        log.exception("building %s in a process of its own failed", view.table_name)
        os._exit(1)
    os._exit(HANDED_BACK)  # not a normal exit: the thread reading stdin would block it
