"""The agent feeding the command-results view (`tables.results`) from the command-results
topic, keyed by command id, so any worker can route a lookup to the result's owner."""

from functools import partial

from faust import EventT, StreamT
from pydantic import ValidationError

from agents.dead_letters import handle_batch_or_park, park
from agents.saga_agent import route_to_saga
from streams import topics
from streams.app import app, settings
from streams.envelopes import CommandResult
from streams.faust_patches import as_current
from tables.progress import progress
from tables.results import NAME, RESULTS


@app.agent(topics.command_results, concurrency=1)
async def read_results(stream: StreamT[bytes]) -> None:
    """The one agent reading the command-results topic: it records each result and routes
    the ones the saga waits for. (With two agents on one topic, a rebalance could wait
    forever for a record one had handled while the other's copy was stuck in an interrupted
    hand-off.)"""
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        parsed = [(record, await read(record)) for record in batch]
        await handle_batch_or_park("results batch", batch, partial(handle_batch, parsed))
        progress.folded_batch(NAME, [(record.message.partition, record.message.offset,
                                      record.message.timestamp, True) for record in batch])


async def read(record: EventT) -> CommandResult | None:
    try:
        return CommandResult.model_validate_json(record.value)
    except ValidationError as exc:
        await park(record, f"unreadable command result: {exc}")
        return None


async def handle_batch(parsed: list[tuple[EventT, CommandResult | None]]) -> None:
    for record, result in parsed:
        if result is None:
            continue
        as_current(record)
        key = str(result.command_id).encode()
        if key not in RESULTS:
            RESULTS[key] = record.value
        await route_to_saga(record, result)
