"""The process a worker starts to build a view version apart (`agents.build_process`).

It folds the worker's partitions as the in-process builder does (the same restore, fold,
changelog, RocksDB and commits, `agents.view_builder.Builder`) until it is at most
HAND_BACK records behind the log's end on every one, then closes their stores and exits
with HANDED_BACK: the worker's builder goes on from the committed offsets. It owns those
stores while it runs. It exits at once when its stdin closes: the worker stopped it (a
rebalance, the version made live here) or died.
"""

import logging
import os
import sys
import threading
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
            while not await _near_end(consumer, tps):
                fetched = await consumer.getmany(timeout_ms=200, max_records=settings.batch_size)
                for tp, records in fetched.items():
                    if records:
                        await self._fold(tp, records, producer, consumer)
        for partition in list(self.store.partitions):
            self.store.close(partition)


async def _near_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    ends = {tp: consumer.highwater(tp) for tp in tps}
    if None in ends.values():
        ends = await consumer.end_offsets(tps)
    for tp in tps:
        end = ends[tp]
        if end is None or end - await consumer.position(tp) > HAND_BACK:
            return False
    return True


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
