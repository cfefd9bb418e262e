"""The projector agent: folds the event log into every registered view's table."""

import logging

import orjson
from faust import StreamT
from pydantic import ValidationError

from streams import topics
from streams.app import app, bytes_table
from streams.envelopes import Event, parse_event
from tables.registry import VIEWS
from tables.view import apply

log = logging.getLogger(__name__)

VIEW_TABLES = {
    name: bytes_table(view.table_name)
    for name, view in VIEWS.items()
}


@app.agent(topics.events, concurrency=1)
async def project_events(stream: StreamT[bytes]) -> None:
    async for event in stream.events():
        try:
            parsed = parse_event(event.value)
        except ValidationError as exc:
            log.error("unreadable event at %s[%s]@%s: %s", event.message.topic,
                      event.message.partition, event.message.offset, exc)
            continue
        project(parsed)


def project(event: Event) -> None:
    for name, view in VIEWS.items():
        if event.type not in view.handles:
            continue
        table = VIEW_TABLES[name]
        key = view.key(event).encode()
        raw = table.get(key)
        row = apply(view, orjson.loads(raw) if raw is not None else None, event)
        if row is not None:
            table[key] = orjson.dumps(row)


def read_row(view_name: str, key: str) -> dict | None:
    raw = VIEW_TABLES[view_name].get(key.encode())
    return orjson.loads(raw) if raw is not None else None
