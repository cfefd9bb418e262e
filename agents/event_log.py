"""The one agent reading the event log: each batch is parsed once, folded into the views and
routed to the saga."""

import logging
from functools import partial

from faust import EventT, StreamT

from agents.dead_letters import park
from agents.projector import project_log, read
from agents.retry import GaveUp, retrying
from agents.saga_agent import route_parsed
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event

log = logging.getLogger(__name__)


@app.agent(topics.events, concurrency=1)
async def read_event_log(stream: StreamT[bytes]) -> None:
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        parsed = [(record, await read(record)) for record in batch]
        try:
            await retrying("event log batch", partial(handle_batch, parsed))
        except GaveUp as exc:
            for record in batch:
                await park(record, f"event log batch kept failing: {exc}", exc.attempts)
        except Exception as exc:
            log.exception("event log batch failed")
            for record in batch:
                await park(record, f"event log batch failed: {type(exc).__name__}: {exc}")


async def handle_batch(parsed: list[tuple[EventT, Event | None]]) -> None:
    await project_log(parsed)
    for record, event in parsed:
        if event is not None:
            await route_parsed(record, event)
