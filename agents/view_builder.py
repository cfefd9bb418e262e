"""Building a view version beside the resident one, on every worker, from the event log's start.

Each worker folds the event-log partitions it owns in the app's group (so a version's rows
live where the resident version's do, and a read is routed the same way) with the version's
own consumer group for offsets, `<prefix>.view-<view>-v<N>`. A batch's rows go to the
version's compacted changelog and its RocksDB before its offsets are committed: a crash
repeats a batch, which folds to the same rows. A partition that moves here is restored from
the changelog first. Building has no side effects: no saga input, no push, no results.
While the version is far behind the log's end, the fold runs in a process of its own
(`agents.build_process`) and this builder takes over near the end.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError

from agents.build_process import HANDED_BACK, BuildProcess
from streams import topics
from streams.app import app, settings
from streams.envelopes import parse_event
from streams.kafka_clients import client_options
from streams.sending import send_batches
from streams.store import is_behind
from tables.catalog import catalog
from tables.progress import progress
from tables.version_store import PartitionStore, VersionStore, changelog_of, group_of
from tables.view import Data, View, apply, encode_rows

log = logging.getLogger(__name__)
IDLE = 0.2
RESTART_AFTER = 2.0
FOLD_SLICE = 20  # records folded (or rows sent) between two turns of the event loop


async def ensure_changelog(view: View) -> None:
    await ensure_topic(changelog_of(view), {"cleanup.policy": "compact"})


async def ensure_topic(name: str, configs: dict[str, str]) -> None:
    """Create the topic with the app's partitions and replication, unless it exists."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(
            name, settings.partitions, settings.replication, topic_configs=configs)])
    finally:
        await admin.close()
    for topic, code, *_ in response.topic_errors:
        if code not in (0, TopicAlreadyExistsError.errno):
            raise RuntimeError(f"cannot create {topic}: Kafka error {code}")


@asynccontextmanager
async def clients(view: View) -> AsyncIterator[tuple[AIOKafkaConsumer, AIOKafkaProducer]]:
    """A consumer in the version's group (assigned, never subscribed) and a producer."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group_of(view),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                linger_ms=settings.linger_ms)
    await consumer.start()
    await producer.start()
    try:
        yield consumer, producer
    finally:
        await producer.stop()
        await consumer.stop()


class Builder:
    """One view version's fold on this worker: its partitions, positions and rows."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.store = VersionStore(settings.data_dir / "views" / view.table_name)
        self.owned: set[int] = set()
        self.ready: set[int] = set()  # owned and restored: rows can be served
        self.unfoldable = 0
        self.folded = 0
        self.folded_apart = 0  # of `folded`, by processes of their own
        self.apart: BuildProcess | None = None  # the process folding `owned`, if one does

    def row(self, key: str, partition: int) -> bytes | None:
        if partition not in self.ready:
            raise LookupError(f"{self.view.table_name} partition {partition} is not here yet")
        return self.store.open(partition).get(key)

    async def run(self) -> None:
        while True:
            try:
                await self._build()
            except asyncio.CancelledError:
                raise
            except Exception:  # committed offsets and the changelog say where to go on from
                log.exception("building %s failed; starting again", self.view.table_name)
            self.ready.clear()
            self.owned.clear()
            await asyncio.sleep(RESTART_AFTER)

    async def _build(self) -> None:
        await ensure_changelog(self.view)
        async with clients(self.view) as (consumer, producer):
            try:
                while True:
                    wanted = self.owned if app.rebalancing else _actives()
                    if self.apart is not None and await self._apart_goes_on(wanted):
                        await asyncio.sleep(IDLE)
                        continue
                    if wanted != self.owned and not await self._hand_apart(consumer, wanted):
                        await self._assign(consumer, wanted)
                    if not self.owned or self.apart is not None:
                        await asyncio.sleep(IDLE)
                        continue
                    fetched = await consumer.getmany(timeout_ms=int(IDLE * 1000),
                                                     max_records=settings.batch_size)
                    for tp, records in fetched.items():
                        if tp.partition in self.owned and records:
                            await self._fold(tp, records, producer, consumer)
            finally:
                if self.apart is not None:
                    await self.apart.stop()
                    self.apart = None

    async def _hand_apart(self, consumer: AIOKafkaConsumer, wanted: set[int]) -> bool:
        """Start a process of its own to fold `wanted` if the version is far behind on one
        of them and is not live here (a live version's rows must stay readable)."""
        far = settings.build_apart_from
        if (far is None or not wanted
                or catalog.live_version(self.view.name) == self.view.version):
            return False
        events = topics.events.get_topic_name()
        tps = [TopicPartition(events, p) for p in sorted(wanted)]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        behind = [ends[tp] - ((await consumer.committed(tp)) or starts[tp]) for tp in tps]
        if max(behind) < far:
            return False
        consumer.assign([])
        for partition in list(self.store.partitions):
            self.ready.discard(partition)
            self.store.close(partition)
        self.apart = await BuildProcess.start(self.view, wanted, self._reported)
        self.owned = set(wanted)
        return True

    async def _apart_goes_on(self, wanted: set[int]) -> bool:
        """Whether the process folding this version may go on; if not, it is stopped (a
        rebalance, other partitions, the version live here; or it handed back or died), and
        the partitions are assigned again from the committed offsets."""
        assert self.apart is not None
        live = catalog.live_version(self.view.name) == self.view.version
        if self.apart.running and not app.rebalancing and wanted == self.owned and not live:
            return True
        code = await self.apart.stop()
        failed = code != HANDED_BACK and wanted == self.owned and not app.rebalancing
        self.apart = None
        self.owned = set()
        if failed and not live:
            log.warning("building %s in a process of its own stopped (exit code %s); "
                        "starting again", self.view.table_name, code)
            await asyncio.sleep(RESTART_AFTER)
        return False

    def _reported(self, batch: dict[str, Any]) -> None:
        self.folded += batch["records"]
        self.folded_apart += batch["records"]
        self.unfoldable += batch["unfoldable"]
        progress.folded(self.view.table_name, batch["partition"], batch["offset"], batch["at"])

    async def _assign(self, consumer: AIOKafkaConsumer, wanted: set[int]) -> None:
        for partition in self.owned - wanted:
            self.ready.discard(partition)
            self.store.close(partition)
        events = topics.events.get_topic_name()
        tps = [TopicPartition(events, p) for p in sorted(wanted)]
        consumer.assign(tps)
        for tp in tps:
            # The committed offset first, the changelog after: a former owner still folding
            # (stopping, or out of the group) writes a batch's rows before committing it, so
            # every row of a commit read here is in the changelog read next. The other way
            # round, its last batch could land between the two: committed, its rows missed.
            committed = await consumer.committed(tp)
            if tp.partition not in self.ready:
                restored = await self._restore(tp.partition)
                log.info("building %s on partition %s from offset %s, its changelog read "
                         "from %s to %s: %s records", self.view.table_name, tp.partition,
                         committed, *restored)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
            if committed:
                progress.passed(self.view.table_name, tp.partition, committed - 1)
            self.ready.add(tp.partition)
        self.owned = set(wanted)

    async def _restore(self, partition: int) -> tuple[int | None, int, int]:
        """Bring the partition's rows up to the changelog's end, keeping per key the row
        that has come furthest; the changelog offsets read from and to, and the records."""
        store = self.store.open(partition)
        tp = TopicPartition(changelog_of(self.view), partition)
        reader = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                  auto_offset_reset="earliest")
        await reader.start()
        try:
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            start = store.changelog_next()
            if start is None:
                await reader.seek_to_beginning(tp)
            else:
                reader.seek(tp, start)
            read = 0
            while await reader.position(tp) < end:
                fetched = (await reader.getmany(tp, timeout_ms=1000, max_records=5000)).get(tp, [])
                _keep_furthest(store, fetched, end)
                read += len(fetched)
            store.put_many({}, end)
        finally:
            await reader.stop()
        return start, end, read

    def _encoded(self, rows: dict[str, Any]) -> dict[str, bytes]:
        """The changed rows as stored; one too large to store keeps its row as it was."""
        encoded, refused = encode_rows(self.view, rows)
        if refused:
            self.unfoldable += len(refused)
            log.warning("%s keeps rows %s as they were: too large to store", self.view.table_name,
                        refused)
        return encoded

    async def _fold(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]],
                    producer: AIOKafkaProducer, consumer: AIOKafkaConsumer) -> None:
        store = self.store.open(tp.partition)
        rows: dict[str, Data | None] = {}
        changed: set[str] = set()
        for n, record in enumerate(records, 1):
            if n % FOLD_SLICE == 0:
                await asyncio.sleep(0)  # the live version's reads go on between slices
            try:
                event = parse_event(record.value)
            except ValidationError:
                continue  # the resident agent parks it; a build has no side effects
            if event.type not in self.view.handles:
                continue
            for key in self.view.keys(event):
                if key not in rows:
                    stored = store.get(key)
                    rows[key] = orjson.loads(stored) if stored is not None else None
                try:
                    folded = apply(self.view, rows[key], event, key)
                except Exception:
                    self.unfoldable += 1
                    log.warning("%s cannot fold event %s", self.view.table_name, event.event_id)
                    continue
                if folded is not None:
                    rows[key] = folded
                    changed.add(key)
        encoded = self._encoded({key: rows[key] for key in changed})
        sent = await send_batches(producer, changelog_of(self.view), tp.partition,
                                  ((key.encode(), value) for key, value in encoded.items()))
        store.put_many(encoded, sent + 1 if sent is not None else None)
        last = records[-1]
        await consumer.commit({tp: last.offset + 1})
        self.folded += len(records)
        progress.folded(self.view.table_name, tp.partition, last.offset, last.timestamp / 1000)


def _keep_furthest(store: PartitionStore, records: Iterable[ConsumerRecord[bytes, bytes]],
                   end: int) -> None:
    latest: dict[str, bytes] = {}
    for record in records:
        if record.offset >= end or record.key is None or record.value is None:
            continue
        key = record.key.decode()
        current = latest.get(key) or store.get(key)
        if not is_behind(record.value, current):
            latest[key] = record.value
    store.put_many(latest)


def _actives() -> set[int]:
    events = topics.events.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == events}
