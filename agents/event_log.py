"""The one agent reading the event log: each batch is parsed once, folded into the views
keyed by aggregate, forwarded to the repartitioned ones and routed to the saga."""

from functools import partial

from faust import EventT, StreamT

from agents.batching import last_per_partition
from agents.dead_letters import handle_batch_or_park
from agents.projection import fold, read
from agents.repartition import FORWARDED, forward
from agents.saga_agent import route_to_saga
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event
from streams.faust_patches import WHOLE_FETCHES
from tables.progress import progress
from tables.registry import VIEWS

DIRECT = [view for view in VIEWS.values() if view.by_aggregate]


@app.agent(topics.events, concurrency=1)
async def read_event_log(stream: StreamT[bytes]) -> None:
    """Subscribes the worker to the event log: Faust's group membership, offsets, tables and
    standbys follow from it. With SHOPSTREAM_WHOLE_FETCHES on, the consumer hands the records
    to `read_records` whole fetches at a time instead (`faust_patches.WHOLE_FETCHES`)."""
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        await read_records(batch)


async def read_records(batch: list[EventT]) -> None:
    parsed = [(record, await read(record)) for record in batch]
    await handle_batch_or_park("event log batch", batch, partial(handle_batch, parsed))


if settings.whole_fetches:
    WHOLE_FETCHES[topics.events.get_topic_name()] = read_records


async def handle_batch(parsed: list[tuple[EventT, Event | None]]) -> None:
    await project_log(parsed)
    for record, event in parsed:
        if event is not None:
            await route_to_saga(record, event)


async def project_log(batch: list[tuple[EventT, Event | None]]) -> None:
    """Fold a batch into the views keyed by aggregate and forward it to the repartitioned
    ones; then tell readers how far each partition has got."""
    readable = [(record, event) for record, event in batch if event is not None]
    for view in DIRECT:
        await fold(view, [(key, (record, event)) for record, event in readable
                          if event.type in view.handles for key in view.keys(event)])
    await forward(readable)
    for view in DIRECT:
        progress.folded_batch(view.name, [
            (record.message.partition, record.message.offset, record.message.timestamp,
             event is not None and event.type in view.handles) for record, event in batch])
    for partition, record in last_per_partition(record for record, _ in batch).items():
        FORWARDED[partition] = record.message.offset
