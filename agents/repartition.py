"""Views keyed other than by aggregate id (by customer, by sku): their events are forwarded
to a repartition topic keyed by the view's key, so each row is owned by one partition, and
folded there by one agent per view.

Watermarks tell each repartition partition how far along the event log forwarding has got,
so a reader there can tell that an event which never reached it has been forwarded anyway.
"""

from functools import partial

import orjson
from faust import EventT, StreamT, TopicT

from agents.dead_letters import handle_batch_or_park, park
from agents.projection import Parsed, fold, read
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event
from tables.progress import progress
from tables.registry import VIEWS
from tables.view import View

WATERMARK_INTERVAL = 0.1
WATERMARK = "watermark"
WATERMARK_PREFIX = b'{"watermark"'
SOURCE = "source"

REPARTITIONED = {view.name: topics.repartition(view.table_name)
                 for view in VIEWS.values() if not view.by_aggregate}
INPUT_TOPIC = {name: REPARTITIONED[name].get_topic_name() if name in REPARTITIONED
               else topics.events.get_topic_name() for name in VIEWS}
"""Every view's input topic, by view name."""

FORWARDED: dict[int, int] = {}  # event-log partition -> last offset forwarded to repartitions
WATERMARKED: dict[int, int] = {}


async def forward(readable: list[Parsed]) -> None:
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
    """One record per repartition partition carries every event-log partition's offset."""
    forwarded = dict(FORWARDED)
    if forwarded == WATERMARKED:
        return
    mark = orjson.dumps({WATERMARK: {str(p): offset for p, offset in forwarded.items()}})
    for topic in REPARTITIONED.values():
        for target in range(settings.partitions):
            await topic.send(key=b"", value=mark, partition=target)
    WATERMARKED.clear()
    WATERMARKED.update(forwarded)


def _register_agent(view: View, topic: TopicT) -> None:
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
    _register_agent(VIEWS[_name], _topic)
