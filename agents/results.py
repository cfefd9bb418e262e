"""The agent feeding the command-results view (`tables.results`) from the command-results
topic, keyed by command id, so any worker can route a lookup to the result's owner.

With SHOPSTREAM_WHOLE_FETCHES on, the consumer hands it whole fetches, as it does the event
log's; with SHOPSTREAM_WRITE_BEHIND on, a batch's new rows go into RocksDB in one write batch
per partition and their changelog records in whole producer batches (`tables.storage`)."""

from functools import partial

from faust import EventT, StreamT
from pydantic import ValidationError

from agents.dead_letters import handle_batch_or_park, park
from agents.saga_agent import route_to_saga
from streams import topics
from streams.app import app, settings
from streams.envelopes import CommandResult
from streams.faust_patches import WHOLE_FETCHES, as_current, stored_value
from tables.progress import progress
from tables.results import NAME, RESULTS, recorded
from tables.storage import put_rows, send_rows, writes_behind


@app.agent(topics.command_results, concurrency=1)
async def read_results(stream: StreamT[bytes]) -> None:
    """The one agent reading the command-results topic: it records each result and routes
    the ones the saga waits for. (With two agents on one topic, a rebalance could wait
    forever for a record one had handled while the other's copy was stuck in an interrupted
    hand-off.)"""
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        await read_records(batch)


async def read_records(batch: list[EventT]) -> None:
    parsed = [(record, await read(record)) for record in batch]
    await handle_batch_or_park("results batch", batch, partial(handle_batch, parsed))
    progress.folded_batch(NAME, [(record.message.partition, record.message.offset,
                                  record.message.timestamp, True) for record in batch])


if settings.whole_fetches:
    WHOLE_FETCHES[topics.command_results.get_topic_name()] = read_records


async def read(record: EventT) -> CommandResult | None:
    try:
        return CommandResult.model_validate_json(record.value)
    except ValidationError as exc:
        await park(record, f"unreadable command result: {exc}")
        return None


async def handle_batch(parsed: list[tuple[EventT, CommandResult | None]]) -> None:
    behind = writes_behind(RESULTS)
    rows: dict[int, dict[bytes, bytes]] = {}
    keys = []
    for record, result in parsed:
        if result is None:
            continue
        key = str(result.command_id).encode()
        keys.append(key)
        if behind:
            partition = record.message.partition
            if (key not in rows.get(partition, {})
                    and stored_value(RESULTS.data, partition, key) is None):
                rows.setdefault(partition, {})[key] = record.value
        else:
            as_current(record)
            if key not in RESULTS:
                RESULTS[key] = record.value
        await route_to_saga(record, result)
    if rows:
        put_rows(RESULTS, rows)
        await send_rows(RESULTS, rows)
    recorded(keys)
