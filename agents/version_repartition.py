"""Building a version of a view keyed other than by aggregate (`customer-orders`, `sales`),
beside the resident one, on every worker: the resident version's repartition step, for the
version alone. A windowed view's rows are one per key and window (`tables.windows`).

Stage 1 reads the event-log partitions this worker owns in the app's group, with the
version's consumer group `<prefix>.view-<view>-v<N>` from the log's start, and forwards each
event it folds, keyed by the view's key, to the version's own repartition topic
`<prefix>.view-<view>-v<N>-repartition`; after every batch it sends each repartition
partition a watermark (how far along each event-log partition it has forwarded), then
commits. Stage 2 folds the repartition partitions this worker owns (the same numbers: Faust
assigns topics of one partition count together) into the version's rows and changelog, as
a builder does, and commits with each offset, as metadata, how far along each event-log
partition the rows it has stored reach. A version's position on event-log partition S is
the least of those over every repartition partition: where all its rows have folded S.

A crash between forwarding and committing in stage 1 forwards a batch again; the fold
skips what a row already reflects (`tables.view.apply`). Building has no side effects.
"""

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from agents.repartition import SOURCE, WATERMARK, WATERMARK_PREFIX
from agents.view_builder import (
    FOLD_SLICE,
    IDLE,
    Builder,
    _actives,
    changelog_of,
    ensure_changelog,
    ensure_topic,
    group_of,
)
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event, parse_event
from streams.kafka_clients import client_options
from streams.partitioning import owning_partition
from streams.sending import send_batches
from tables.progress import progress
from tables.view import Data, View, apply
from tables.windows import built_slot

Reached = dict[int, int]  # event-log partition -> last offset forwarded (or folded) from it


def repartition_of(view: View) -> str:
    return settings.topic(f"view-{view.table_name}-repartition")


def fold_group_of(view: View) -> str:
    return settings.topic(f"view-{view.table_name}-fold")


async def ensure_repartition(view: View) -> None:
    await ensure_changelog(view)
    await ensure_topic(repartition_of(view), {"retention.ms": "-1"})


def encode_reached(reached: Reached) -> str:
    return orjson.dumps({str(p): offset for p, offset in sorted(reached.items())}).decode()


def decode_reached(metadata: str | bytes | None) -> Reached:
    try:
        found = orjson.loads(metadata or b"{}")
        return {int(p): int(offset) for p, offset in found.items()}
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return {}


async def committed_reached(view: View, partitions: list[int]) -> dict[int, Reached]:
    """Per repartition partition, how far along each event-log partition its stored rows
    reach, as stage 2 committed it."""
    tps = [TopicPartition(repartition_of(view), q) for q in partitions]
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(fold_group_of(view), partitions=tps)
    finally:
        await admin.close()
    return {tp.partition: decode_reached(committed[tp].metadata) if tp in committed else {}
            for tp in tps}


def folded_positions(reached: dict[int, Reached], sources: list[int]) -> dict[int, int]:
    """Per event-log partition, the offset before which every record is in the rows of every
    repartition partition: the least over them."""
    return {s: min((r.get(s, -1) for r in reached.values()), default=-1) + 1 for s in sources}


class RepartitionedBuilder(Builder):
    """A builder whose rows are keyed other than by aggregate: forward, then fold."""

    def __init__(self, view: View) -> None:
        super().__init__(view)
        self.reached: dict[int, Reached] = {}
        self.forwarded = 0

    async def _build(self) -> None:
        await ensure_repartition(self.view)
        producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                    linger_ms=settings.linger_ms)
        await producer.start()
        try:
            async with asyncio.TaskGroup() as stages:
                stages.create_task(self._forward_all(producer))
                stages.create_task(self._fold_all(producer))
        finally:
            await producer.stop()

    async def _forward_all(self, producer: AIOKafkaProducer) -> None:
        consumer = _consumer(group_of(self.view))
        await consumer.start()
        try:
            mine: set[int] = set()
            while True:
                wanted = mine if app.rebalancing else _actives()
                if wanted != mine:
                    await _seek_committed(consumer, topics.events.get_topic_name(), wanted)
                    mine = set(wanted)
                if not mine:
                    await asyncio.sleep(IDLE)
                    continue
                fetched = await consumer.getmany(timeout_ms=int(IDLE * 1000),
                                                 max_records=settings.batch_size)
                batches = {tp: records for tp, records in fetched.items()
                           if tp.partition in mine and records}
                if batches:
                    await self._forward(batches, producer, consumer)
        finally:
            await consumer.stop()

    async def _forward(self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
                       producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
        target = repartition_of(self.view)
        sent = []
        for tp, records in batches.items():
            for n, record in enumerate(records, 1):
                if n % FOLD_SLICE == 0:
                    await asyncio.sleep(0)
                source = f"{tp.partition}:{record.offset}".encode()
                for key, event in self._keyed(record.value):
                    sent.append(await producer.send(
                        target, record.value, key.encode(),
                        partition=owning_partition(key, settings.partitions),
                        timestamp_ms=int(event.occurred_at.timestamp() * 1000),
                        headers=[(SOURCE, source)]))
        await asyncio.gather(*sent)
        mark = orjson.dumps({WATERMARK: {str(tp.partition): records[-1].offset
                                         for tp, records in batches.items()}})
        await asyncio.gather(*[await producer.send(target, mark, b"", partition=q)
                               for q in range(settings.partitions)])
        await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
        self.forwarded += sum(len(records) for records in batches.values())

    def _keyed(self, value: bytes) -> list[tuple[str, Event]]:
        """The view's keys of an event it folds, each with the event; none for any other."""
        try:
            event = parse_event(value)
        except ValidationError:
            return []  # the resident agent parks it; a build has no side effects
        if event.type not in self.view.handles:
            return []
        try:
            return [(key, event) for key in self.view.keys(event)]
        except Exception:
            self.unfoldable += 1
            return []

    async def _fold_all(self, producer: AIOKafkaProducer) -> None:
        consumer = _consumer(fold_group_of(self.view))
        await consumer.start()
        try:
            while True:
                wanted = self.owned if app.rebalancing else _actives()
                if wanted != self.owned:
                    await self._take(consumer, wanted)
                if not self.owned:
                    await asyncio.sleep(IDLE)
                    continue
                fetched = await consumer.getmany(timeout_ms=int(IDLE * 1000),
                                                 max_records=settings.batch_size)
                for tp, records in fetched.items():
                    if tp.partition in self.owned and records:
                        await self._fold_forwarded(tp, records, producer, consumer)
        finally:
            await consumer.stop()

    async def _take(self, consumer: AIOKafkaConsumer, wanted: set[int]) -> None:
        """Hold the repartition partitions `wanted`: restored, and where their rows reach."""
        for partition in self.owned - wanted:
            self.ready.discard(partition)
            self.reached.pop(partition, None)
            self.store.close(partition)
        self.owned = set()
        # Committed offsets first, the changelog after (as `Builder._assign`): a former owner
        # still folding stores a batch's rows before committing it.
        starts = await _committed(consumer, repartition_of(self.view), wanted)
        reached = await committed_reached(self.view, sorted(wanted))
        for partition in sorted(wanted):
            if partition not in self.ready:
                await self._restore(partition)
            self.reached[partition] = reached[partition]
            for source, offset in reached[partition].items():
                progress.reached(self.view.table_name, partition, source, offset)
            self.ready.add(partition)
        await _seek(consumer, starts)
        self.owned = set(wanted)

    async def _fold_forwarded(self, tp: TopicPartition,
                              records: list[ConsumerRecord[bytes, bytes]],
                              producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
        store = self.store.open(tp.partition)
        reached = dict(self.reached.get(tp.partition, {}))
        rows: dict[str, Data | None] = {}
        changed: set[str] = set()
        now = time.time()
        for n, record in enumerate(records, 1):
            if n % FOLD_SLICE == 0:
                await asyncio.sleep(0)
            if record.value.startswith(WATERMARK_PREFIX):
                _raise(reached, _watermark(record.value))
                continue
            _raise(reached, _source(record.headers))
            try:
                event = parse_event(record.value)
            except ValidationError:
                continue  # stage 1 forwards only what it could parse: code changed since
            key = (record.key or b"").decode()
            slot = built_slot(self.view, key, event, now)
            if slot is None:
                continue
            if slot not in rows:
                stored = store.get(slot)
                rows[slot] = orjson.loads(stored) if stored is not None else None
            try:
                folded = apply(self.view, rows[slot], event, key)
            except Exception:
                self.unfoldable += 1
                folded = None
            if folded is not None:
                rows[slot] = folded
                changed.add(slot)
        encoded = self._encoded({key: rows[key] for key in changed})
        sent = await send_batches(producer, changelog_of(self.view), tp.partition,
                                  ((key.encode(), value) for key, value in encoded.items()))
        store.put_many(encoded, sent + 1 if sent is not None else None)
        last = records[-1]
        await consumer.commit({tp: (last.offset + 1, encode_reached(reached))})
        self.reached[tp.partition] = reached
        self.folded += len(records)
        progress.folded(self.view.table_name, tp.partition, last.offset, last.timestamp / 1000)
        for source, offset in reached.items():
            progress.reached(self.view.table_name, tp.partition, source, offset)


def _consumer(group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**client_options(settings), group_id=group,
                            enable_auto_commit=False, auto_offset_reset="earliest")


async def _committed(consumer: AIOKafkaConsumer, topic: str,
                     partitions: set[int]) -> dict[TopicPartition, int | None]:
    return {tp: await consumer.committed(tp)
            for tp in (TopicPartition(topic, p) for p in sorted(partitions))}


async def _seek(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int | None]) -> None:
    """Assign the partitions of `offsets` and read each from its offset (None: the start)."""
    consumer.assign(list(offsets))
    for tp, offset in offsets.items():
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)


async def _seek_committed(consumer: AIOKafkaConsumer, topic: str, partitions: set[int]) -> None:
    await _seek(consumer, await _committed(consumer, topic, partitions))


def _watermark(value: bytes) -> Reached:
    return {int(p): int(offset) for p, offset in orjson.loads(value)[WATERMARK].items()}


def _source(headers: Any) -> Reached:
    source = dict(headers or ()).get(SOURCE)
    if not source:
        return {}
    partition, _, offset = source.decode().partition(":")
    return {int(partition): int(offset)}


def _raise(reached: Reached, seen: Reached) -> None:
    for partition, offset in seen.items():
        if offset > reached.get(partition, -1):
            reached[partition] = offset
