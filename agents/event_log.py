"""The one agent reading the event log: each batch is parsed once, folded into the views and
routed to the saga."""

from functools import partial

from faust import EventT, StreamT

from agents.dead_letters import handle_batch_or_park
from agents.projector import project_log, read
from agents.saga_agent import route_to_saga
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event


@app.agent(topics.events, concurrency=1)
async def read_event_log(stream: StreamT[bytes]) -> None:
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        parsed = [(record, await read(record)) for record in batch]
        await handle_batch_or_park("event log batch", batch, partial(handle_batch, parsed))


async def handle_batch(parsed: list[tuple[EventT, Event | None]]) -> None:
    await project_log(parsed)
    for record, event in parsed:
        if event is not None:
            await route_to_saga(record, event)
