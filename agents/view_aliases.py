"""Every worker follows the view catalog (`tables.catalog`): which version of each view is
live, and which versions are building or retired.

A switch takes effect here once the new version has folded, on every partition this worker
owns, at least as far as the version serving now (or after SWITCH_GUARD, logged): the check
and the flip happen in one step of the event loop, so no reader sees a row go back.
"""

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer

from agents.following import follow_from_start
from streams import topics
from streams.app import app
from tables.catalog import catalog
from tables.progress import progress
from tables.registry import VERSIONS, progress_name

log = logging.getLogger(__name__)
RESTART_AFTER = 2.0
SWITCH_GUARD = 2.0
SWITCHES: list[tuple[str, int, float]] = []  # (view, version, seconds from record to flip)


def lagging(view: str, old: int, new: int) -> list[int]:
    """The partitions owned here where the new version has folded less than the old: of
    the event log, or for a view fed through a repartition topic, of any event-log partition
    its rows here have folded."""
    events = topics.events.get_topic_name()
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == events}
    new_name, old_name = progress_name(VERSIONS[view][new]), progress_name(VERSIONS[view][old])
    if not VERSIONS[view][new].by_aggregate:
        return [p for p in sorted(owned) if _behind(progress.sources.get((new_name, p), {}),
                                                    progress.sources.get((old_name, p), {}))]
    return [p for p in sorted(owned)
            if progress.applied.get((new_name, p), -1) < progress.applied.get((old_name, p), -1)]


def _behind(new: dict[int, int], old: dict[int, int]) -> bool:
    return any(new.get(source, -1) < offset for source, offset in old.items())


async def switch_when_caught_up(value: bytes, written: float) -> None:
    record = orjson.loads(value)
    view, new = record["view"], record["live"]
    old = catalog.live_version(view)
    if new != old and new in VERSIONS.get(view, {}):
        deadline = time.monotonic() + SWITCH_GUARD
        new_name = progress_name(VERSIONS[view][new])
        while (behind := lagging(view, old, new)) and time.monotonic() < deadline:
            await progress.wait_until(new_name, behind[0],
                                      lambda: behind[0] not in lagging(view, old, new),
                                      deadline - time.monotonic())
        if lagging(view, old, new):
            log.warning("%s v%s is behind v%s here; switching after %.1f s all the same",
                        view, new, old, SWITCH_GUARD)
    catalog.observe(value)
    SWITCHES.append((view, new, time.time() - written))
    del SWITCHES[:-20]


@app.task
async def follow_view_catalog() -> None:
    await follow_from_start(topics.view_aliases.get_topic_name(), _follow, RESTART_AFTER)


async def _follow(consumer: AIOKafkaConsumer) -> None:
    await asyncio.sleep(0)
    partitions = consumer.assignment()
    while not partitions:
        await consumer.getmany(timeout_ms=200)
        partitions = consumer.assignment()
    ends = await consumer.end_offsets(list(partitions))
    while True:
        fetched = await consumer.getmany(timeout_ms=500)
        for records in fetched.values():
            for record in records:
                if catalog.loaded and record.key and record.key.startswith(b"live/"):
                    await switch_when_caught_up(record.value, record.timestamp / 1000)
                else:
                    catalog.observe(record.value)
        if not catalog.loaded and all([await consumer.position(tp) >= end
                                       for tp, end in ends.items()]):
            catalog.loaded = True
            catalog.changed.fire()
