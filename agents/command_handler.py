"""The command handler agent: parse, dedupe, load state, decide, append events, store, reply.

The handling works on a batch, in order: each decision sees the state left by the commands
before it, in the batch too; every event of the batch is sent at once, and only when the
broker has acknowledged them all do states, first results and replies follow. A crash or a
retry before that point repeats the batch, which re-emits identical events.

With SHOPSTREAM_WHOLE_FETCHES on, the consumer hands both commands topics' records over whole
fetches at a time (`faust_patches.WHOLE_FETCHES`), as it does the event log's. A batch's events
and its replies go to aiokafka as one producer batch per partition, and the write model is
written behind (`agents.write_model`), flushed at the batch's end.
"""

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from faust import EventT, StreamT
from pydantic import ValidationError

from agents import write_model
from agents.catch_up import catch_up
from agents.dead_letters import handle_batch_or_park, park
from domain.aggregates import BY_COMMAND, Aggregate, handle
from domain.rejection import Rejected
from streams import topics
from streams.app import app, ensure_member, settings
from streams.commands import INTERNAL, internal_rule
from streams.envelopes import Command, Position, encode, parse_command, result_of
from streams.faust_patches import WHOLE_FETCHES, Producer, as_current
from streams.partitioning import owning_partition
from tables import view

log = logging.getLogger(__name__)
decided: Counter[str] = Counter(accepted=0, rejected=0)  # new results by status, since start


@dataclass
class Decision:
    record: EventT
    command: Command
    version: int = 0
    events: list[bytes] = field(default_factory=list)  # encoded, to append
    sent: list[tuple[Any, int]] = field(default_factory=list)  # per event: (batch future, index)
    reason: str | None = None  # why it was rejected
    first: "Decision | None" = None  # the same command id, decided before in this batch
    result: bytes | None = None  # known once decided before this batch, or once acknowledged
    internal: bool = False  # came on the internal commands topic, from the saga


@dataclass
class Batch:
    decisions: list[Decision] = field(default_factory=list)
    by_command: dict[str, Decision] = field(default_factory=dict)
    states: dict[tuple[Aggregate, str], tuple[Any, bytes, EventT]] = field(default_factory=dict)


INTERNAL_TOPIC = topics.internal_commands.get_topic_name()
COMMAND_TOPICS = (topics.commands.get_topic_name(), INTERNAL_TOPIC)
EVENTS_TOPIC = topics.events.get_topic_name()
RESULTS_TOPIC = topics.command_results.get_topic_name()


@app.agent(topics.all_commands, concurrency=1)
async def handle_commands(stream: StreamT[bytes]) -> None:
    """Clients' commands and the saga's, from their two topics; an internal command type
    that comes on the clients' topic is rejected, naming the rule."""
    async for records in stream.take_events(settings.batch_size, settings.batch_within):
        await handle_records(records)


async def handle_records(records: list[EventT]) -> None:
    await handle_batch_or_park("command batch", records, partial(handle_batch, records))


if settings.whole_fetches:
    for _topic in COMMAND_TOPICS:
        WHOLE_FETCHES[_topic] = handle_records


async def handle_batch(records: list[EventT]) -> None:
    await catch_up.before(records)
    batch = Batch()
    try:
        for record in records:
            try:
                await handle_command(record, batch)
            except Exception as exc:  # a bug must park the command, not stop the agent
                log.exception("command handling failed")
                await park(record, f"handling failed: {type(exc).__name__}: {exc}")
        # Events are acknowledged by the broker before any state moves on, so a crash in
        # between repeats the batch (with identical event ids) and never loses a command.
        await append(batch.decisions)
        await ensure_member()  # the acks may have come after a long stop
        # States and first results are written with no pause in between, then the replies.
        for (aggregate, aggregate_id), (_, raw, record) in batch.states.items():
            as_current(record)
            write_model.store_encoded(aggregate, aggregate_id, raw, record.message.partition)
        replies = [(str(decision.command.command_id).encode(), conclude(decision))
                   for decision in batch.decisions]
    finally:
        await write_model.flush()
    await send_results(replies)


async def append(decisions: list[Decision]) -> None:
    """Send every decided event, one producer batch per event-log partition, and wait for the
    broker's acknowledgements."""
    by_partition: dict[int, list[tuple[Decision, bytes]]] = {}
    for decision in decisions:
        for event in decision.events:
            by_partition.setdefault(decision.record.message.partition, []).append(
                (decision, event))
    futures = []
    for partition, items in by_partition.items():
        placed = iter(decision for decision, _ in items)
        for future, count in await send_events(partition, [
                (decision.command.aggregate_id.encode(), event) for decision, event in items]):
            futures.append(future)
            for index in range(count):
                next(placed).sent.append((future, index))
    await asyncio.gather(*futures)


async def handle_command(record: EventT, batch: Batch) -> None:
    """Parse, dedupe, load the state, decide and send the events of one command."""
    internal = record.message.topic == INTERNAL_TOPIC
    try:
        command = parse_command(record.value)
    except ValidationError as exc:
        await park(record, f"unreadable command: {exc}")
        return
    partition = record.message.partition
    if partition != owning_partition(command.aggregate_id, settings.partitions):
        await reroute(command, record, internal)
        return
    if not internal and command.reply_to is not None:
        # reply_to tells the saga a result is its own; a client may not claim that
        command = command.model_copy(update={"reply_to": None})
    decision = Decision(record, command, internal=internal)
    batch.decisions.append(decision)
    as_current(record)
    dedupe_key = write_model.dedupe_key(command.command_id, internal)
    first = batch.by_command.get(dedupe_key)
    if first is not None:
        decision.first = first
        return
    batch.by_command[dedupe_key] = decision
    decision.result = write_model.first_result(command.command_id, internal, partition)
    if decision.result is not None:
        return
    applied = catch_up.result_of(str(command.command_id), command.aggregate_id)
    if applied is not None:  # its events are on the log already (see agents.catch_up)
        decision.result = write_model.remember(result_of(
            command, "accepted", applied.version, positions=applied.positions), internal,
            partition)
        return
    aggregate = BY_COMMAND[command.type]
    key = (aggregate, command.aggregate_id)
    state = (batch.states[key][0] if key in batch.states
             else write_model.load(aggregate, command.aggregate_id, partition))
    if command.type in INTERNAL and not internal:
        decision.version = state.version if state is not None else 0
        decision.reason = internal_rule(command.type)
        return
    at = datetime.fromtimestamp(record.message.timestamp, UTC)
    try:
        new_state, events = handle(aggregate, state, command, at)
    except Rejected as rejection:
        decision.version = state.version if state is not None else 0
        decision.reason = rejection.reason
        return
    raw = new_state.model_dump_json().encode()
    if len(raw) > view.MAX_ROW_BYTES:  # its changelog record would be refused
        decision.version = state.version if state is not None else 0
        decision.reason = (f"{aggregate.kind} {command.aggregate_id} would hold {len(raw):,} bytes "
                           f"of state, over the {view.MAX_ROW_BYTES:,} a changelog record may hold")
        return
    decision.events = [encode(event) for event in events]
    decision.version = new_state.version
    batch.states[key] = (new_state, raw, record)


def conclude(decision: Decision) -> bytes:
    """The command's result: the first one if the command id was seen before, else its own,
    remembered as the first."""
    if decision.first is not None:
        return conclude(decision.first)
    if decision.result is None:
        as_current(decision.record)
        if decision.reason is not None:
            result = result_of(decision.command, "rejected", decision.version,
                               reason=decision.reason)
        else:
            positions = [Position(partition=sent.partition, offset=sent.offset + index)
                         for sent, index in ((future.result(), index)
                                             for future, index in decision.sent)]
            result = result_of(decision.command, "accepted", decision.version,
                               positions=positions)
        decision.result = write_model.remember(result, decision.internal,
                                               decision.record.message.partition)
        decided["rejected" if decision.reason is not None else "accepted"] += 1
    return decision.result


async def reroute(command: Command, record: EventT, internal: bool) -> None:
    """A producer that is not murmur2-partitioned put this command on a partition that does
    not own its aggregate; move it to the owner, where its state lives."""
    log.warning("command %s for %s arrived on partition %s, moving it to its owner",
                command.command_id, command.aggregate_id, record.message.partition)
    await (topics.internal_commands if internal else topics.commands).send(
        key=command.aggregate_id.encode(),
        value=record.value,
        partition=owning_partition(command.aggregate_id, settings.partitions),
    )


async def send_events(partition: int, records: list[tuple[bytes, bytes]]) -> list[tuple[Any, int]]:
    """The events as whole producer batches: each batch's future and its record count."""
    return await producer().send_whole(EVENTS_TOPIC, partition, records)


async def send_results(results: list[tuple[bytes, bytes]]) -> None:
    """Results keyed by command id, one producer batch per partition; one that fails with a
    retriable error is sent again, and the flush before the next commit waits for them."""
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in results:
        by_partition.setdefault(owning_partition(key.decode(), settings.partitions), []).append(
            (key, value))
    values = dict(results)  # a command id's results are all its first
    for partition, records in by_partition.items():
        await producer().send_records(RESULTS_TOPIC, partition, records,
                                      lambda keys: [values[key] for key in keys])


def producer() -> Producer:
    assert isinstance(app.producer, Producer)
    return app.producer
