"""The projector agents: fold the event log into every registered view's table.

Views keyed by the aggregate id are co-partitioned with the event log and folded straight
from it; a view keyed otherwise (by customer, say) gets its events through a repartition
topic keyed by the view's key, so each of its rows is owned by one partition.
"""

import logging

import orjson
from faust import EventT, StreamT, TopicT
from pydantic import ValidationError

from streams import topics
from streams.app import app, bytes_table
from streams.envelopes import Event, parse_event
from tables.registry import VIEWS
from tables.view import View, apply

log = logging.getLogger(__name__)

VIEW_TABLES = {name: bytes_table(view.table_name) for name, view in VIEWS.items()}
DIRECT = [view for view in VIEWS.values() if view.by_aggregate]
REPARTITIONED = {view.name: topics.repartition(view.table_name)
                 for view in VIEWS.values() if not view.by_aggregate}


@app.agent(topics.events, concurrency=1)
async def project_events(stream: StreamT[bytes]) -> None:
    async for event in stream.events():
        parsed = _parse(event)
        if parsed is None:
            continue
        for view in DIRECT:
            project(view, parsed)
        for name, topic in REPARTITIONED.items():
            view = VIEWS[name]
            if parsed.type in view.handles:
                await topic.send(key=view.key(parsed).encode(), value=event.value)


def _repartitioned_agent(view: View, topic: TopicT) -> None:
    async def project_repartitioned(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            parsed = _parse(event)
            if parsed is not None:
                project(view, parsed)

    app.agent(topic, name=f"project-{view.name}", concurrency=1)(project_repartitioned)


for _name, _topic in REPARTITIONED.items():
    _repartitioned_agent(VIEWS[_name], _topic)


def project(view: View, event: Event) -> None:
    if event.type not in view.handles:
        return
    table = VIEW_TABLES[view.name]
    key = view.key(event).encode()
    raw = table.get(key)
    row = apply(view, orjson.loads(raw) if raw is not None else None, event)
    if row is not None:
        table[key] = orjson.dumps(row)


def read_row(view_name: str, key: str) -> dict | None:
    raw = VIEW_TABLES[view_name].get(key.encode())
    return orjson.loads(raw) if raw is not None else None


def _parse(event: EventT) -> Event | None:
    try:
        return parse_event(event.value)
    except ValidationError as exc:
        log.error("unreadable event at %s[%s]@%s: %s", event.message.topic,
                  event.message.partition, event.message.offset, exc)
        return None
