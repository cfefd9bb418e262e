"""A built version made resident by a deploy: folding the events its build had not reached.

Its Faust tables restore from the built changelog (`tables.storage`), so they hold the rows as
the build left them, at the build's committed offsets (group `<prefix>.view-<view>-v<N>`). The
event-log agent goes on from the app group's committed offsets. Where those are past the
build's, the agent would skip the events in between; so when the tables are restored after
each assignment, before any stream resumes (Faust's `on_recover`), the events from the
build's offset up to the app group's are folded into the version on every event-log
partition this worker owns (no saga input, no push, no result), and the view's index, which
a build does not keep, is made from the partition's rows. Then the build's group is committed
there with the metadata `resident`, and later assignments have nothing to do. Where the
build is ahead of the app group, the agent folds events a row already reflects, which
changes nothing (`tables.view.apply`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from streams import topics
from streams.app import app, settings
from streams.envelopes import Event, parse_event
from streams.faust_patches import partition_items, stored_value
from streams.kafka_clients import client_options
from tables.registry import VIEWS, promoted
from tables.storage import INDEX_TABLES, VIEW_TABLES, write_now
from tables.version_store import VersionStore, group_of
from tables.view import Data, View, apply, encode_rows

log = logging.getLogger(__name__)
RESIDENT = "resident"  # the commit metadata saying the version is resident from that offset
ATTEMPTS = 5
PROMOTED = [view for view in VIEWS.values() if promoted(view) and view.by_aggregate]
Promote = Callable[[View, list[TopicPartition]], Awaitable[None]]


async def promote_owned(view: View) -> None:
    """Bring the version up to the app group's offsets on every event-log partition owned
    here."""
    await promote_retrying(view, promote, owned(topics.events.get_topic_name()))


def owned(topic: str) -> list[TopicPartition]:
    """The partitions of the topic this worker holds as active."""
    return sorted(TopicPartition(topic, tp.partition) for tp in app.assignor.assigned_actives()
                  if tp.topic == topic)


async def promote_retrying(view: View, promote_on: Promote, tps: list[TopicPartition]) -> None:
    """Promote the version on the partitions; a failure is logged and tried again (the streams
    wait meanwhile)."""
    VersionStore(settings.data_dir / "views" / view.table_name).drop()  # the build's copy
    for attempt in range(1, ATTEMPTS + 1):
        try:
            await promote_on(view, tps)
            return
        except Exception:
            log.exception("%s: folding what its build had not reached failed (attempt %s)",
                          view.table_name, attempt)
            await asyncio.sleep(attempt)
    log.error("%s: gave up folding what its build had not reached; its rows may lack events "
              "until the partitions are assigned again", view.table_name)


async def promote(view: View, tps: list[TopicPartition]) -> None:
    built = await committed(group_of(view), tps)
    resident = await committed(str(app.conf.id), tps)
    caught_up: dict[TopicPartition, OffsetAndMetadata] = {}
    for tp in tps:
        if tp in built and built[tp].metadata == RESIDENT:
            continue
        start = max(built[tp].offset, 0) if tp in built else 0
        end = max(resident[tp].offset, 0) if tp in resident else 0
        read = changed = 0
        async for events in read_range(tp, start, end):
            read += len(events)
            changed += await fold_gap(view, tp.partition, [
                (key, event) for event in events if event.type in view.handles
                for key in view.keys(event)])
        indexed = await make_index(view, tp.partition)
        caught_up[tp] = OffsetAndMetadata(max(start, end), RESIDENT)
        log.info("%s made resident on partition %s: the %s events from the build's offset %s "
                 "to the app's %s changed %s rows; %s index entries", view.table_name,
                 tp.partition, read, start, end, changed, indexed)
    if caught_up:
        await commit(group_of(view), caught_up)


async def committed(group: str, tps: list[TopicPartition],
                    ) -> dict[TopicPartition, OffsetAndMetadata]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp: offset for tp, offset in found.items() if offset.offset >= 0}


async def commit(group: str, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def read_range(tp: TopicPartition, start: int, end: int) -> AsyncIterator[list[Event]]:
    """The readable events of the partition at offsets [start, end), a fetch at a time."""
    if start >= end:
        return
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, max(start, (await consumer.beginning_offsets([tp]))[tp]))
        while await consumer.position(tp) < end:
            fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            events = []
            for record in fetched.get(tp, []):
                if record.offset >= end:
                    break
                try:
                    events.append(parse_event(record.value))
                except ValidationError:
                    continue  # parked when the resident agent met it
            yield events
    finally:
        await consumer.stop()


async def fold_gap(view: View, partition: int, keyed: list[tuple[str, Event]]) -> int:
    """Fold each event into the row of its key in one partition of the version; how many
    rows changed (a row changed by two calls counts twice)."""
    store = VIEW_TABLES[view.name].data
    rows: dict[str, Data | None] = {}
    changed: set[str] = set()
    for key, event in keyed:
        if key not in rows:
            stored = stored_value(store, partition, key.encode())
            rows[key] = orjson.loads(stored) if stored is not None else None
        try:
            folded = apply(view, rows[key], event, key)
        except Exception:  # its build skipped it too; the old resident agent parked it
            log.warning("%s cannot fold event %s", view.table_name, event.event_id)
            continue
        if folded is not None:
            rows[key] = folded
            changed.add(key)
    encoded, refused = encode_rows(view, {key: rows[key] for key in sorted(changed)})
    if refused:
        log.warning("%s keeps rows %s as they were: too large to store", view.table_name, refused)
    await write_now(VIEW_TABLES[view.name], partition,
                    {key.encode(): raw for key, raw in encoded.items()})
    return len(encoded)


async def make_index(view: View, partition: int) -> int:
    """An index entry for every row of the partition: a built version keeps no index."""
    if view.listing is None or view.listing.index is None:
        return 0
    entries = {}
    for key, raw in partition_items(VIEW_TABLES[view.name].data, partition, b""):
        entry = view.listing.index_key(orjson.loads(raw)["data"], key.decode())
        if entry is not None:
            entries[entry.encode()] = b""
    await write_now(INDEX_TABLES[view.name], partition, entries)
    return len(entries)


for _view in PROMOTED:
    VIEW_TABLES[_view.name].on_recover(partial(promote_owned, _view))
