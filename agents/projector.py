"""The projector agents: fold the event log into every registered view's table.

Views keyed by the aggregate id are co-partitioned with the event log and folded straight
from it; a view keyed otherwise (by customer, by sku) gets its events through a repartition
topic keyed by the view's key, so each of its rows is owned by one partition. A windowed
view's table is a Faust windowed table over the events' time.
"""

import logging
from datetime import timedelta
from typing import Any

import orjson
from faust import EventT, StreamT, TopicT
from pydantic import ValidationError

from agents.dead_letters import park
from agents.progress import progress
from agents.subscriptions import subscriptions
from streams import topics
from streams.app import app, bytes_table, settings
from streams.envelopes import Event, parse_event
from tables.registry import VIEWS
from tables.view import View, apply

log = logging.getLogger(__name__)
WINDOW_RETENTION = timedelta(days=400)
WATERMARK_INTERVAL = 0.1
WATERMARK = "watermark"
WATERMARK_PREFIX = b'{"watermark"'
SOURCE = "source"


def _table(view: View) -> Any:
    if view.window is None:
        return bytes_table(view.table_name)
    # JSON keys: a windowed table's keys are (key, (window start, window end)).
    return app.Table(view.table_name, partitions=settings.partitions, key_type=str,
                     value_type=bytes)


VIEW_TABLES = {name: _table(view) for name, view in VIEWS.items()}
WINDOWED = {
    name: VIEW_TABLES[name].tumbling(view.window, expires=WINDOW_RETENTION).relative_to_stream()
    for name, view in VIEWS.items() if view.window
}
DIRECT = [view for view in VIEWS.values() if view.by_aggregate]
REPARTITIONED = {view.name: topics.repartition(view.table_name)
                 for view in VIEWS.values() if not view.by_aggregate}
INPUT_TOPIC = {name: REPARTITIONED[name].get_topic_name() if name in REPARTITIONED
               else topics.events.get_topic_name() for name in VIEWS}


FORWARDED: dict[int, int] = {}  # event-log partition -> last offset forwarded to repartitions
WATERMARKED: dict[int, int] = {}


@app.agent(topics.events, concurrency=1)
async def project_events(stream: StreamT[bytes]) -> None:
    async for event in stream.events():
        message = event.message
        parsed = await _read(event)
        if parsed is not None:
            for view in DIRECT:
                await _fold(view, parsed, event)
            await _forward(parsed, event)
        for view in DIRECT:
            progress.folded(view.name, message.partition, message.offset, message.timestamp)
        FORWARDED[message.partition] = message.offset


async def _forward(parsed: Event, event: EventT) -> None:
    source = f"{event.message.partition}:{event.message.offset}".encode()
    for name, topic in REPARTITIONED.items():
        view = VIEWS[name]
        if parsed.type not in view.handles:
            continue
        # The record keeps the event's time: windowed tables window by record time.
        for key in view.keys(parsed):
            await topic.send(key=key.encode(), value=event.value, headers={SOURCE: source},
                             timestamp=parsed.occurred_at.timestamp())


@app.timer(WATERMARK_INTERVAL)
async def send_watermarks() -> None:
    """Tell every repartition partition how far along the event log forwarding has got, so a
    reader there can tell that an event which never reached it has been forwarded anyway."""
    for partition, offset in list(FORWARDED.items()):
        if WATERMARKED.get(partition) == offset:
            continue
        mark = orjson.dumps({WATERMARK: [partition, offset]})
        for topic in REPARTITIONED.values():
            for target in range(settings.partitions):
                await topic.send(key=b"", value=mark, partition=target)
        WATERMARKED[partition] = offset


def _repartitioned_agent(view: View, topic: TopicT) -> None:
    async def project_repartitioned(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            if event.value.startswith(WATERMARK_PREFIX):
                source_partition, offset = orjson.loads(event.value)[WATERMARK]
                progress.passed(view.name, message.partition, message.offset)
                progress.reached(view.name, message.partition, source_partition, offset)
                continue
            parsed = await _read(event)
            if parsed is not None:
                await _fold(view, parsed, event, only=event.key.decode())
            progress.folded(view.name, message.partition, message.offset, message.timestamp)
            source = dict(message.headers or ()).get(SOURCE)
            if source:
                source_partition, _, offset = source.decode().partition(":")
                progress.reached(view.name, message.partition, int(source_partition), int(offset))

    app.agent(topic, name=f"project-{view.name}", concurrency=1)(project_repartitioned)


for _name, _topic in REPARTITIONED.items():
    _repartitioned_agent(VIEWS[_name], _topic)


def project(view: View, event: Event, only: str | None = None) -> None:
    if event.type not in view.handles:
        return
    table = WINDOWED[view.name] if view.window else VIEW_TABLES[view.name]
    for key in [only] if only is not None else view.keys(event):
        stored = _current_window(table, key) if view.window else table.get(key.encode())
        row = apply(view, orjson.loads(stored) if stored is not None else None, event, key)
        if row is not None:
            table[key if view.window else key.encode()] = orjson.dumps(row)
            subscriptions.publish(view.name, key, row)


async def _fold(view: View, parsed: Event, event: EventT, only: str | None = None) -> None:
    """Project, parking rather than raising: one event a projector cannot fold (a bug, or a
    log written by hand) must not stop the view for every other key."""
    try:
        project(view, parsed, only)
    except Exception as exc:
        log.exception("%s could not fold event %s", view.table_name, parsed.event_id)
        await park(event, f"{view.table_name} could not fold it: {type(exc).__name__}: {exc}")


def _current_window(table: Any, key: str) -> bytes | None:
    try:
        return table[key].current()
    except KeyError:
        return None


def read_row(view_name: str, key: str) -> dict | None:
    raw = VIEW_TABLES[view_name].get(key.encode())
    return orjson.loads(raw) if raw is not None else None


def read_windows(view_name: str, key: str, starts: list[float]) -> list[dict]:
    """The rows of a windowed view for `key` in the windows starting at `starts`."""
    table = VIEW_TABLES[view_name]
    rows = []
    for start in starts:
        raw = table.get((key, table.window.current(start)))
        if raw is not None:
            rows.append(orjson.loads(raw))
    return rows


async def _read(event: EventT) -> Event | None:
    try:
        return parse_event(event.value)
    except ValidationError as exc:
        await park(event, f"unreadable event: {exc}")
        return None
