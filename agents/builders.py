"""Which view versions this worker builds, and reading the live version's rows.

Every worker runs one builder per version the catalog says is building or live:
`view_builder.Builder` for a version keyed by aggregate,
`version_repartition.RepartitionedBuilder` for any other.
"""

import asyncio
import time
from contextlib import suppress
from typing import Any

import orjson

from agents.version_repartition import RepartitionedBuilder
from agents.view_builder import Builder
from streams.app import app, settings
from streams.partitioning import owning_partition
from tables.catalog import catalog
from tables.registry import VERSIONS, is_resident
from tables.storage import drop_resident_tables, read_row, read_windows, windows_between
from tables.version_store import VersionStore
from tables.view import Data, View
from tables.windows import expired, split, start_at, window_key


def builder_for(view: View) -> Builder:
    """A version keyed by aggregate folds the event log; any other one goes through a
    repartition topic of its own first."""
    return Builder(view) if view.by_aggregate else RepartitionedBuilder(view)


BUILDERS: dict[tuple[str, int], Builder] = {}
TASKS: dict[tuple[str, int], asyncio.Task[None]] = {}


@app.task
async def supervise_builders() -> None:
    """Keep a builder running for every version the catalog says is building or live, and
    drop the rows of retired ones."""
    while True:
        wanted = set(catalog.to_build()) if catalog.loaded else set(TASKS)
        for slot in wanted - set(TASKS):
            BUILDERS[slot] = builder_for(VERSIONS[slot[0]][slot[1]])
            TASKS[slot] = asyncio.create_task(BUILDERS[slot].run())
        for slot in set(TASKS) - wanted:
            task = TASKS.pop(slot)
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            builder = BUILDERS.pop(slot)
            if catalog.states.get(slot) == "retired":
                builder.store.drop()
            else:
                for partition in list(builder.store.partitions):
                    builder.store.close(partition)
        for (view, version), state in list(catalog.states.items()):
            if state == "retired" and (view, version) not in TASKS:
                VersionStore(settings.data_dir / "views" / f"{view}-v{version}").drop()
                drop_resident_tables(VERSIONS[view][version])
        await catalog.changed.wait_until(lambda: False, 1.0)


def live_view(name: str) -> View:
    """The version of a view that serves its reads now."""
    return VERSIONS[name][catalog.live_version(name)]


def read_live_row(view: View, key: str) -> dict[str, Any] | None:
    """A row of `view` (resident or built here); LookupError when this worker cannot serve it."""
    if is_resident(view):
        return read_row(view.name, key)
    raw = _builder(view).row(key, owning_partition(key, settings.partitions))
    return orjson.loads(raw) if raw is not None else None


def read_live_windows(view: View, key: str, starts: list[float]) -> list[dict[str, Any]]:
    """The rows of a windowed view's version for `key` in the windows starting at `starts`
    (a built version's expired windows left out); LookupError as `read_live_row`."""
    if is_resident(view):
        return read_windows(view.name, key, starts)
    builder, now = _builder(view), time.time()
    partition = owning_partition(key, settings.partitions)
    raws = [builder.row(window_key(key, start_at(start)), partition)
            for start in starts if not expired(view, start, now)]
    return [orjson.loads(raw) for raw in raws if raw is not None]


def live_windows_between(view: View, partition: int, begin: float, end: float) -> list[Data]:
    """The data of a windowed view's version's rows in one partition whose window starts in
    [begin, end); LookupError when this worker cannot serve the partition from it."""
    if is_resident(view):
        return list(windows_between(view, partition, begin, end))
    builder, now = _builder(view), time.time()
    if partition not in builder.ready:
        raise LookupError(f"{view.table_name} partition {partition} is not here yet")
    found = []
    for row_key, raw in builder.store.open(partition).rows():
        start = split(row_key)[1]
        if begin <= start < end and not expired(view, start, now):
            found.append(orjson.loads(raw)["data"])
    return found


def _builder(view: View) -> Builder:
    builder = BUILDERS.get((view.name, view.version))
    if builder is None:
        raise LookupError(f"{view.table_name} is not built on this worker")
    return builder
