"""The one agent reading the event log: each batch is parsed once, folded into the views and
routed to the saga."""

from faust import StreamT

from agents.projector import project_log, read
from agents.saga_agent import route_parsed
from streams import topics
from streams.app import app, settings


@app.agent(topics.events, concurrency=1)
async def read_event_log(stream: StreamT[bytes]) -> None:
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        parsed = [(record, await read(record)) for record in batch]
        await project_log(parsed)
        for record, event in parsed:
            if event is not None:
                await route_parsed(record, event)
