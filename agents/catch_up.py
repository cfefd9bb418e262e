"""Bringing the write model up to the event log before a partition's new owner decides.

The command handler appends a batch's events, waits for the broker's acknowledgements, then
writes the aggregates' states, which reach their changelog before the commands' offsets are
committed. A worker killed or stopped in between leaves events on the log that the states
its successor restores do not reflect; the successor handles the same commands again, from
two topics and perhaps in another order, and would decide new events at versions already
taken: two events at one version on an immutable log.

So after each assignment, the first batch of a commands topic's partition first reads the
event log's partition from `catch_up_lookback` seconds before that batch's oldest command to
its end. Each event past its aggregate's stored version is folded into the state, and each
event's command is remembered as applied: the command gets its result from the log instead
of a second decision.
"""

import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust import EventT
from pydantic import ValidationError

from agents import write_model
from domain.aggregates import aggregate_of
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event, Position, parse_event
from streams.faust_patches import as_current
from streams.kafka_clients import client_options

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What the event log holds for one command: its events' aggregate, last version and
    positions."""

    aggregate_id: str
    version: int
    positions: list[Position] = field(default_factory=list)


@dataclass
class CatchUp:
    assignment: int = -1
    done: set[tuple[str, int]] = field(default_factory=set)  # (commands topic, partition)
    applied: dict[str, Applied] = field(default_factory=dict)  # by command id

    async def before(self, records: list[EventT]) -> None:
        """Catch up each partition of `records` not yet caught up for its topic since the
        last assignment."""
        assignments = getattr(app.consumer, "assignments", 0)
        if not assignments:  # nothing was handed over (an agent test's context)
            return
        if self.assignment != assignments:
            self.assignment = assignments
            self.done.clear()
            self.applied.clear()
        oldest: dict[tuple[str, int], EventT] = {}
        for record in records:
            slot = (record.message.topic, record.message.partition)
            if slot not in self.done and (slot not in oldest or record.message.timestamp
                                          < oldest[slot].message.timestamp):
                oldest[slot] = record
        if not oldest:
            return
        consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
        await consumer.start()
        try:
            for slot, record in oldest.items():
                await self.catch_up(consumer, record)
                self.done.add(slot)
        finally:
            await consumer.stop()

    async def catch_up(self, consumer: AIOKafkaConsumer, anchor: EventT) -> None:
        partition = anchor.message.partition
        since = anchor.message.timestamp - settings.catch_up_lookback
        events = await read_log(consumer, partition, since)
        folded = 0
        for offset, event in events:
            applied = self.applied.setdefault(str(event.command_id),
                                              Applied(event.aggregate_id, event.version))
            applied.version = max(applied.version, event.version)
            position = Position(partition=partition, offset=offset)
            if position not in applied.positions:  # the log is read again for each topic
                applied.positions.append(position)
            as_current(anchor)
            folded += fold(event)
        log.info("partition %s: read %s events of the log since %.0f, folded %s into the "
                 "write model", partition, len(events), since, folded)

    def result_of(self, command_id: str, aggregate_id: str) -> Applied | None:
        applied = self.applied.get(command_id)
        return applied if applied is not None and applied.aggregate_id == aggregate_id else None


def fold(event: Event) -> int:
    """Fold the event into its aggregate's stored state if it is the next version: 1 if it
    was folded, 0 if the state already reflects it."""
    aggregate = aggregate_of(event.payload)
    state = write_model.load(aggregate, event.aggregate_id)
    version = state.version if state is not None else 0
    if event.version <= version:
        return 0
    if event.version > version + 1:
        log.error("%s is at version %s, the log has version %s: versions between are missing",
                  event.aggregate_id, version, event.version)
        return 0
    write_model.store(aggregate, event.aggregate_id, aggregate.evolve(state, event.payload))
    return 1


async def read_log(consumer: AIOKafkaConsumer, partition: int,
                   since: float) -> list[tuple[int, Event]]:
    """The readable events of the event log's partition from time `since` (seconds) to its
    current end, with their offsets, read with `consumer` (assigned that partition alone)."""
    tp = TopicPartition(topics.events.get_topic_name(), partition)
    consumer.assign([tp])
    end = (await consumer.end_offsets([tp]))[tp]
    start = (await consumer.offsets_for_times({tp: max(0, int(since * 1000))}))[tp]
    if start is None:
        return []
    consumer.seek(tp, start.offset)
    events = []
    while await consumer.position(tp) < end:
        fetched = await consumer.getmany(tp, timeout_ms=1000)
        for record in fetched.get(tp, []):
            if record.offset >= end:
                break
            try:
                events.append((record.offset, parse_event(record.value)))
            except ValidationError:
                continue  # the projection parks it
    return events


catch_up = CatchUp()
