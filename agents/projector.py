"""The projector agents: fold the event log into every registered view's table.

Views keyed by the aggregate id are co-partitioned with the event log and folded straight
from it; a view keyed otherwise (by customer, by sku) gets its events through a repartition
topic keyed by the view's key, so each of its rows is owned by one partition. A windowed
view's table is a Faust windowed table over the events' time.
"""

import logging
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
from faust import EventT, StreamT, TopicT
from pydantic import ValidationError

from agents.batching import as_current, grouped, last_per_partition
from agents.dead_letters import handle_batch_or_park, park
from streams import topics
from streams.app import app, bytes_table, settings
from streams.envelopes import Event, parse_event
from tables.progress import progress
from tables.registry import VIEWS
from tables.subscriptions import subscriptions
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
Parsed = tuple[EventT, Event]


async def project_log(batch: list[tuple[EventT, Event | None]]) -> None:
    """Fold a batch of the event log into the views keyed by aggregate and forward it to the
    repartitioned ones; then tell readers how far each partition has got."""
    readable = [(record, event) for record, event in batch if event is not None]
    for view in DIRECT:
        await fold(view, [(key, (record, event)) for record, event in readable
                          if event.type in view.handles for key in view.keys(event)])
    await _forward(readable)
    for partition, record in last_per_partition(record for record, _ in batch).items():
        for view in DIRECT:
            progress.folded(view.name, partition, record.message.offset,
                            record.message.timestamp)
        FORWARDED[partition] = record.message.offset


async def _forward(readable: list[Parsed]) -> None:
    for record, event in readable:
        source = f"{record.message.partition}:{record.message.offset}".encode()
        for name, topic in REPARTITIONED.items():
            view = VIEWS[name]
            if event.type not in view.handles:
                continue
            # The record keeps the event's time: windowed tables window by record time.
            for key in view.keys(event):
                await topic.send(key=key.encode(), value=record.value, headers={SOURCE: source},
                                 timestamp=event.occurred_at.timestamp())


@app.timer(WATERMARK_INTERVAL)
async def send_watermarks() -> None:
    """Tell every repartition partition how far along the event log forwarding has got, so a
    reader there can tell that an event which never reached it has been forwarded anyway.
    One record per repartition partition carries every event-log partition's offset."""
    forwarded = dict(FORWARDED)
    if forwarded == WATERMARKED:
        return
    mark = orjson.dumps({WATERMARK: {str(p): offset for p, offset in forwarded.items()}})
    for topic in REPARTITIONED.values():
        for target in range(settings.partitions):
            await topic.send(key=b"", value=mark, partition=target)
    WATERMARKED.clear()
    WATERMARKED.update(forwarded)


def _repartitioned_agent(view: View, topic: TopicT) -> None:
    async def project_repartitioned(stream: StreamT[bytes]) -> None:
        async for batch in stream.take_events(settings.batch_size, settings.batch_within):
            data = [record for record in batch if not record.value.startswith(WATERMARK_PREFIX)]
            parsed = [(record, await read(record)) for record in data]
            await handle_batch_or_park(f"{view.name} batch", batch,
                                       partial(project_batch, view, batch, parsed))

    app.agent(topic, name=f"project-{view.name}", concurrency=1)(project_repartitioned)


async def project_batch(view: View, batch: list[EventT],
                        parsed: list[tuple[EventT, Event | None]]) -> None:
    await fold(view, [((record.key or b"").decode(errors="replace"), (record, event))
                      for record, event in parsed
                      if event is not None and event.type in view.handles])
    for record in batch:
        await _record_progress(view, record)


async def _record_progress(view: View, record: EventT) -> None:
    message = record.message
    if record.value.startswith(WATERMARK_PREFIX):
        try:
            reached = {int(p): int(o) for p, o in orjson.loads(record.value)[WATERMARK].items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            await park(record, f"unreadable watermark: {exc}")
            return
        progress.passed(view.name, message.partition, message.offset)
        for source_partition, offset in reached.items():
            progress.reached(view.name, message.partition, source_partition, offset)
        return
    progress.folded(view.name, message.partition, message.offset, message.timestamp)
    source = dict(message.headers or ()).get(SOURCE)
    if source:
        source_partition, _, offset = source.decode().partition(":")
        progress.reached(view.name, message.partition, int(source_partition), int(offset))


for _name, _topic in REPARTITIONED.items():
    _repartitioned_agent(VIEWS[_name], _topic)


async def fold(view: View, keyed: list[tuple[str, Parsed]]) -> None:
    """Fold each key's events in order and write each key (each window of a windowed view)
    once: one store put and one changelog record per key per batch."""
    groups = grouped(((key, view.window_start(event) if view.window else None), (record, event))
                     for key, (record, event) in keyed)
    for (key, _), items in groups.items():
        await _fold_key(view, key, items)


async def _fold_key(view: View, key: str, items: list[Parsed]) -> None:
    table = WINDOWED[view.name] if view.window else VIEW_TABLES[view.name]
    as_current(items[-1][0])
    stored = _current_window(table, key) if view.window else table.get(key.encode())
    row = orjson.loads(stored) if stored is not None else None
    versions = []
    for record, event in items:
        try:
            folded = apply(view, row, event, key)
        except Exception as exc:
            # One event a projector cannot fold (a bug, or a log written by hand) must not
            # stop the view for every other key.
            log.exception("%s could not fold event %s", view.table_name, event.event_id)
            await park(record, f"{view.table_name} could not fold it: "
                               f"{type(exc).__name__}: {exc}")
            continue
        if folded is not None:
            row = folded
            versions.append(folded)
    if not versions:
        return
    try:
        table[key if view.window else key.encode()] = orjson.dumps(row)
    except Exception as exc:  # a row that cannot be stored parks its key's events, no more
        log.exception("%s could not store row %r", view.table_name, key)
        for record, _ in items:
            await park(record, f"{view.table_name} could not store the row: "
                               f"{type(exc).__name__}: {exc}")
        return
    for version in versions:
        subscriptions.publish(view.name, key, version)


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


async def read(record: EventT) -> Event | None:
    """The event in a record, or None once an unreadable record is parked."""
    try:
        return parse_event(record.value)
    except ValidationError as exc:
        await park(record, f"unreadable event: {exc}")
        return None
