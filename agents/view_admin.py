"""Operating view versions through Kafka: where each stands against the log, building,
switching and retiring; shared by the `views` CLI command and the /admin/views pages."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from agents.version_repartition import (
    committed_reached,
    ensure_repartition,
    fold_group_of,
    folded_positions,
    repartition_of,
)
from streams.app import app, settings
from streams.kafka_clients import client_options
from tables.catalog import Catalog, live_key, live_record, version_key, version_record
from tables.registry import VERSIONS, is_resident
from tables.storage import VIEW_TABLES, resident_topics
from tables.version_store import changelog_of, group_of
from tables.view import View

READY_WITHIN = 2.0
"""A version is caught up once it has folded every event appended more than this many
seconds ago: under steady traffic the log's end moves on while any version folds, so a
version is never exactly at the end when asked."""


class Refused(Exception):
    """An operation that would be wrong now; the message says why."""


@dataclass(frozen=True)
class Position:
    partition: int
    folded: int  # the committed offset: every record before it is in the version's rows
    end: int
    settled: int | None = None  # every record before it was appended READY_WITHIN s ago

    @property
    def behind(self) -> int:
        return max(0, self.end - self.folded)

    @property
    def caught_up(self) -> bool:
        return self.folded >= (self.end if self.settled is None else self.settled)


def events_topic() -> str:
    return settings.topic("events")


def aliases_topic() -> str:
    return settings.topic("view-aliases")


def changelog_name(view: View) -> str:
    if is_resident(view):
        name: str = VIEW_TABLES[view.name].changelog_topic.get_topic_name()
        return name
    return changelog_of(view)


def version_of(view: str, version: int) -> View:
    if view not in VERSIONS:
        raise Refused(f"no view named {view!r}; views: {', '.join(sorted(VERSIONS))}")
    if version not in VERSIONS[view]:
        raise Refused(f"{view} declares no version {version}; versions: "
                      f"{', '.join(map(str, sorted(VERSIONS[view])))}")
    return VERSIONS[view][version]


def newest(view: str) -> int:
    if view not in VERSIONS:
        raise Refused(f"no view named {view!r}; views: {', '.join(sorted(VERSIONS))}")
    return max(VERSIONS[view])


async def read_catalog() -> Catalog:
    """The catalog as it stands on its topic now."""
    catalog = Catalog()
    tp = TopicPartition(aliases_topic(), 0)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                catalog.observe(record.value)
    finally:
        await consumer.stop()
    catalog.loaded = True
    return catalog


async def positions(view: View) -> list[Position]:
    """Per event-log partition: how far the version has folded, against the log's end. A
    version built through a repartition topic has folded an event-log partition as far as
    the least of its repartition partitions has (`agents.version_repartition`)."""
    group = str(app.conf.id) if is_resident(view) else group_of(view)
    partitions = await event_partitions()
    tps = [TopicPartition(events_topic(), p) for p in partitions]
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    admin = AIOKafkaAdminClient(**client_options(settings))
    await consumer.start()
    await admin.start()
    try:
        ends = await consumer.end_offsets(tps)
        since = int((time.time() - READY_WITHIN) * 1000)
        recent = await consumer.offsets_for_times({tp: since for tp in tps})
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
        await consumer.stop()
    folded = {tp.partition: max(committed[tp].offset, 0) if tp in committed else 0
              for tp in tps}
    if repartitioned(view):
        folded = folded_positions(await committed_reached(view, partitions), partitions)
    settled = {tp: min(found.offset, ends[tp]) if (found := recent.get(tp)) else ends[tp]
               for tp in tps}
    return [Position(tp.partition, folded[tp.partition], ends[tp], settled[tp]) for tp in tps]


def repartitioned(view: View) -> bool:
    """A version built through a repartition topic of its own."""
    return not view.by_aggregate and not is_resident(view)


async def event_partitions() -> list[int]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        [description] = await admin.describe_topics([events_topic()])
    finally:
        await admin.close()
    return sorted(p["partition"] for p in description["partitions"])


async def status(catalog: Catalog) -> list[dict[str, Any]]:
    """Every version of every view: its state and per-partition positions."""
    answer = []
    for name, versions in sorted(VERSIONS.items()):
        for number, view in sorted(versions.items()):
            state = catalog.state(name, number)
            entry: dict[str, Any] = {"view": name, "version": number, "state": state,
                                     "resident": is_resident(view),
                                     "new_fields": sorted(view.new_fields)}
            if state not in ("retired", "declared", "former"):
                found = await positions(view)
                entry["partitions"] = [{"partition": p.partition, "folded": p.folded,
                                        "end": p.end, "behind": p.behind} for p in found]
                entry["caught_up"] = all(p.caught_up for p in found)
                if state == "building" and entry["caught_up"]:
                    entry["state"] = "ready"
            answer.append(entry)
    return answer


async def wait_caught_up(view: View, timeout: float) -> list[Position]:
    """Wait until the version has folded everything on the log when called; the positions
    still short when time is up (empty: caught up)."""
    ends = {p.partition: p.end for p in await positions(view)}
    deadline = time.monotonic() + timeout
    while True:
        short = [p for p in await positions(view) if p.folded < ends[p.partition]]
        if not short or time.monotonic() >= deadline:
            return [Position(p.partition, p.folded, ends[p.partition]) for p in short]
        await asyncio.sleep(0.2)


async def _write(key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(aliases_topic(), value, key)
    finally:
        await producer.stop()


def why_not_built(view: View) -> str | None:
    """Why a version cannot be built beside the resident one, or None if it can."""
    if is_resident(view):
        return (f"{view.table_name} is the resident version: the workers' event-log agent "
                f"folds it all along, from their start; there is nothing to build")
    return None


async def rebuild(view: View) -> str:
    refused = why_not_built(view)
    if refused is not None:
        raise Refused(refused)
    catalog = await read_catalog()
    state = catalog.state(view.name, view.version)
    if state in ("building", "live"):
        return f"{view.table_name} is already {state}; nothing to do"
    await _reset_offsets(group_of(view), events_topic())
    if repartitioned(view):
        await ensure_repartition(view)
        await _reset_offsets(fold_group_of(view), repartition_of(view))
    await _write(version_key(view.name, view.version),
                 version_record(view.name, view.version, "building"))
    return f"{view.table_name}: building from the start of the log on every worker"


async def _reset_offsets(group: str, topic: str) -> None:
    """A version built again starts from the log's start: nothing folds it now."""
    tps = [TopicPartition(topic, p) for p in await event_partitions()]
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        await consumer.commit({tp: offset for tp, offset in starts.items()})
    finally:
        await consumer.stop()


async def switch(view: View, force: bool, wait: float) -> str:
    catalog = await read_catalog()
    state = catalog.state(view.name, view.version)
    if state in ("declared", "retired", "former"):
        raise Refused(f"{view.table_name} is {state}: run `views rebuild {view.name} "
                      f"--version {view.version}` first")
    if not force and not is_resident(view):  # the resident version never stops folding
        short = await wait_caught_up(view, wait)
        if short:
            behind = ", ".join(f"partition {p.partition}: {p.behind} behind" for p in short)
            raise Refused(f"{view.table_name} has not caught up ({behind}); wait, or --force")
    await _write(live_key(view.name), live_record(view.name, view.version))
    return f"{view.name}: v{view.version} is live"


async def retire(view: View, stopped: Any = None) -> str:
    """Mark the version retired (workers stop folding it and delete its rows), then delete
    its changelog topic. `stopped` is awaited in between: until every worker has let go."""
    if is_resident(view):
        raise Refused(f"{view.table_name} is the resident version: its Faust tables are made "
                      f"when a worker starts and folded in every event-log batch, and cannot "
                      f"be dropped while workers run; switch {view.name} to another version "
                      f"to stop serving it (docs/evolution.md, Limits)")
    catalog = await read_catalog()
    if catalog.live_version(view.name) == view.version:
        raise Refused(f"{view.table_name} is live; switch {view.name} to another version first")
    await _write(version_key(view.name, view.version),
                 version_record(view.name, view.version, "retired"))
    if stopped is not None:
        await stopped
    names = [changelog_of(view), *([repartition_of(view)] if repartitioned(view) else []),
             *resident_topics(view)]
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        response = await admin.delete_topics(names)
    finally:
        await admin.close()
    deleted = []
    for topic, code, *_ in response.topic_error_codes:
        if code not in (0, UnknownTopicOrPartitionError.errno):
            raise Refused(f"{view.table_name} is retired, but deleting {topic} failed: Kafka "
                          f"error {code}; run retire again")
        if code == 0:
            deleted.append(topic)
    return f"{view.table_name}: retired, {' and '.join(deleted) or 'no topic left'} deleted"
