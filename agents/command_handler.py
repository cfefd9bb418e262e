"""The command handler agent: parse, dedupe, load state, decide, append events, store, reply."""

import logging
from datetime import UTC, datetime

from faust import EventT, StreamT
from pydantic import ValidationError

from agents import write_model
from agents.aggregates import BY_COMMAND, handle
from agents.dead_letters import handle_or_park, park
from agents.rejection import Rejected
from streams import topics
from streams.app import app, settings
from streams.envelopes import Command, Position, encode, parse_command, result_of
from streams.partitioning import owning_partition

log = logging.getLogger(__name__)


@app.agent(topics.commands, concurrency=1)
async def handle_commands(stream: StreamT[bytes]) -> None:
    async for event in stream.events():
        await handle_or_park("command handling", event, handle_one)


async def handle_one(event: EventT) -> None:
    try:
        command = parse_command(event.value)
    except ValidationError as exc:
        await park(event, f"unreadable command: {exc}")
        return
    if event.message.partition != owning_partition(command.aggregate_id, settings.partitions):
        await reroute(command, event)
        return
    previous = write_model.first_result(command.command_id)
    if previous is not None:
        await send_result(command, previous)
        return
    aggregate = BY_COMMAND[command.type]
    state = write_model.load(aggregate, command.aggregate_id)
    at = datetime.fromtimestamp(event.message.timestamp, UTC)
    try:
        state, events = handle(aggregate, state, command, at)
    except Rejected as rejection:
        version = state.version if state is not None else 0
        result = result_of(command, "rejected", version, reason=rejection.reason)
        await send_result(command, write_model.remember(result))
        return
    # Events are acknowledged by the broker before the state moves on, so a crash
    # in between repeats the command (with identical event ids) and never loses it.
    sent = [await topics.events.send(key=command.aggregate_id.encode(), value=encode(e))
            for e in events]
    positions = [Position(partition=m.partition, offset=m.offset) for m in [await f for f in sent]]
    write_model.store(aggregate, command.aggregate_id, state)
    result = result_of(command, "accepted", state.version, positions=positions)
    await send_result(command, write_model.remember(result))


async def reroute(command: Command, event: EventT) -> None:
    """A producer that is not murmur2-partitioned put this command on a partition that does
    not own its aggregate; move it to the owner, where its state lives."""
    log.warning("command %s for %s arrived on partition %s, moving it to its owner",
                command.command_id, command.aggregate_id, event.message.partition)
    await topics.commands.send(
        key=command.aggregate_id.encode(),
        value=event.value,
        partition=owning_partition(command.aggregate_id, settings.partitions),
    )


async def send_result(command: Command, result: bytes) -> None:
    await topics.command_results.send(key=str(command.command_id).encode(), value=result)
