"""Bringing the write model up to the event log before a partition's new owner decides.

The command handler appends a batch's events, waits for the broker's acknowledgements, then
writes the aggregates' states, which reach their changelog before the commands' offsets are
committed. A worker killed or stopped in between leaves events on the log that the states
its successor restores do not reflect; the successor handles the same commands again, from
two topics and perhaps in another order, and would decide new events at versions already
taken: two events at one version on an immutable log.

So when partitions are assigned, one consumer reads, for every commands partition this
worker was given, the event log's partition from `catch_up_lookback` seconds before the
oldest command not yet committed on either commands topic to the log's end (a partition
whose commands are all committed has nothing to read: their states reached the changelog
before their offsets were committed). The streams resume only once that read is done, so
`/ready` answers 200 after it and no command waits for the log. Each event's command is
remembered as applied: it gets its result from the log instead of a second decision; and
the handler's first batch of a partition folds each event past its aggregate's stored
version into the state.
"""

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust import EventT
from faust.types import TP
from pydantic import ValidationError

from agents import write_model
from domain.aggregates import aggregate_of
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event, Position, parse_event
from streams.faust_patches import as_current
from streams.kafka_clients import client_options

log = logging.getLogger(__name__)
COMMAND_TOPICS = (topics.commands.get_topic_name(), topics.internal_commands.get_topic_name())
Log = dict[int, list[tuple[int, Event]]]
"""Events read back, with their offsets, by event-log partition."""


@dataclass
class Applied:
    """What the event log holds for one command: its events' aggregate, last version and
    positions."""

    aggregate_id: str
    version: int
    positions: list[Position] = field(default_factory=list)


@dataclass
class Reading:
    assignment: int
    task: "asyncio.Task[Log]"


@dataclass
class CatchUp:
    assignment: int = -1  # the assignment `unfolded` and `applied` are for
    reading: Reading | None = None
    unfolded: Log = field(default_factory=dict)
    applied: dict[str, Applied] = field(default_factory=dict)  # by command id

    def start(self, assigned: Iterable[TP]) -> None:
        """Read the event log back for the current assignment, unless that is under way."""
        assignments = app.consumer.assignments
        if self.reading is not None:
            if self.reading.assignment == assignments:
                return
            self.reading.task.cancel()
        partitions = sorted({tp.partition for tp in assigned if tp.topic in COMMAND_TOPICS})
        self.reading = Reading(assignments, asyncio.ensure_future(read_logs(partitions)))

    async def read(self) -> None:
        """Until the current assignment's read is done: the tables' recover callback, after
        which the streams resume."""
        self.start(app.assignor.assigned_actives())
        assert self.reading is not None
        task = self.reading.task
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            log.warning("reading the event log back failed (%r): the first command batch "
                        "reads it again", task.exception())

    async def before(self, records: list[EventT]) -> None:
        """Fold what the log holds for each partition of `records` not yet caught up since
        the last assignment."""
        assignments = getattr(app.consumer, "assignments", 0)
        if not assignments:  # nothing was handed over (an agent test's context)
            return
        if self.assignment != assignments:
            self.take(assignments, await self.logs(assignments))
        for record in records:
            events = self.unfolded.pop(record.message.partition, None)
            if events:
                as_current(record)
                folded = sum(fold(event, record.message.partition) for _, event in events)
                log.info("partition %s: folded %s of the %s events read back into the write "
                         "model", record.message.partition, folded, len(events))

    async def logs(self, assignments: int) -> Log:
        reading = self.reading
        if reading is not None and reading.assignment == assignments:
            await asyncio.wait([reading.task])
            if not reading.task.cancelled() and reading.task.exception() is None:
                return reading.task.result()
            log.warning("reading the event log back at the assignment failed: reading it now")
        return await read_logs(sorted({tp.partition for tp in app.assignor.assigned_actives()
                                       if tp.topic in COMMAND_TOPICS}))

    def take(self, assignments: int, logs: Log) -> None:
        self.assignment, self.unfolded, self.applied = assignments, logs, {}
        for partition, events in logs.items():
            for offset, event in events:
                applied = self.applied.setdefault(str(event.command_id),
                                                  Applied(event.aggregate_id, event.version))
                applied.version = max(applied.version, event.version)
                applied.positions.append(Position(partition=partition, offset=offset))

    def result_of(self, command_id: str, aggregate_id: str) -> Applied | None:
        applied = self.applied.get(command_id)
        return applied if applied is not None and applied.aggregate_id == aggregate_id else None


def fold(event: Event, partition: int) -> int:
    """Fold the event into its aggregate's stored state if it is the next version: 1 if it
    was folded, 0 if the state already reflects it."""
    aggregate = aggregate_of(event.payload)
    state = write_model.load(aggregate, event.aggregate_id, partition)
    version = state.version if state is not None else 0
    if event.version <= version:
        return 0
    if event.version > version + 1:
        log.error("%s is at version %s, the log has version %s: versions between are missing",
                  event.aggregate_id, version, event.version)
        return 0
    write_model.store(aggregate, event.aggregate_id, aggregate.evolve(state, event.payload),
                      partition)
    return 1


async def read_logs(partitions: list[int]) -> Log:
    """The readable events of the event log's `partitions` from `catch_up_lookback` seconds
    before each one's oldest uncommitted command to the log's current end."""
    if not partitions:
        return {}
    began = time.monotonic()
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=str(app.conf.id),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        since = await oldest_uncommitted(consumer, partitions)
        logs = await read_since(consumer, since)
    finally:
        await consumer.stop()
    log.info("read the event log back for partitions %s in %.2f s: %s", partitions,
             time.monotonic() - began,
             {p: f"{len(logs.get(p, []))} events since {since[p]:.0f}" for p in since} or
             "every command committed")
    return logs


async def oldest_uncommitted(consumer: AIOKafkaConsumer, partitions: list[int]) -> dict[int, float]:
    """By partition, the time (seconds) of the oldest command not yet committed by the app's
    group on either commands topic; partitions whose commands are all committed are left out."""
    tps = [TopicPartition(topic, partition) for topic in COMMAND_TOPICS for partition in partitions]
    firsts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    pending = {}
    for tp in tps:
        offset = max(await consumer.committed(tp) or 0, firsts[tp])
        if offset < ends[tp]:
            pending[tp] = offset
    oldest: dict[int, float] = {}
    for tp, at in (await fetch_first(consumer, pending)).items():
        oldest[tp.partition] = min(oldest.get(tp.partition, at), at)
    return oldest


async def fetch_first(consumer: AIOKafkaConsumer,
                      offsets: dict[TopicPartition, int]) -> dict[TopicPartition, float]:
    """The time (seconds) of the first record at or after each offset."""
    consumer.assign(list(offsets))
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)
    first: dict[TopicPartition, float] = {}
    while len(first) < len(offsets):
        fetched = await consumer.getmany(*(tp for tp in offsets if tp not in first),
                                         timeout_ms=1000)
        for tp, records in fetched.items():
            if records:
                first[tp] = records[0].timestamp / 1000
    return first


async def read_since(consumer: AIOKafkaConsumer, since: dict[int, float]) -> Log:
    """The readable events of each event-log partition from `catch_up_lookback` seconds before
    its time in `since` to its current end."""
    times = {TopicPartition(topics.events.get_topic_name(), partition):
             max(0, int((at - settings.catch_up_lookback) * 1000))
             for partition, at in since.items()}
    if not times:
        return {}
    ends = await consumer.end_offsets(list(times))
    found = await consumer.offsets_for_times(times)
    starts = {tp: at.offset for tp, at in found.items() if at is not None and at.offset < ends[tp]}
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    logs: Log = {tp.partition: [] for tp in starts}
    left = set(starts)
    while left:
        fetched = await consumer.getmany(*left, timeout_ms=1000)
        for tp, records in fetched.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break
                try:
                    logs[tp.partition].append((record.offset, parse_event(record.value)))
                except ValidationError:
                    continue  # the projection parks it
        left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
    return logs


catch_up = CatchUp()


@app.on_partitions_assigned.connect
async def read_back(sender: object, assigned: set[TP], **_: object) -> None:
    catch_up.start(assigned)


write_model.RESULTS.on_recover(catch_up.read)
