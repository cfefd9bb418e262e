"""Every registered view's Faust table, and reading rows from them.

A view keyed plainly is a RocksDB table of JSON rows; a windowed view is a Faust tumbling
windowed table over its events' time. Reads outside a stream (HTTP handlers) come here.

With SHOPSTREAM_WRITE_BEHIND=on (the default; `off` writes every row through Faust's table),
rows of a plainly keyed view are written behind: a fold puts them in `PENDING`,
where reads see them, and `flush_rows` writes them at the fold's end, per partition one
RocksDB write batch and their changelog records in whole producer batches, instead of a
Faust table write (a RocksDB put, a changelog future and an offset put) per row. Faust's
consumer awaits those records before it commits the offsets that produced them
(`faust_patches.Producer.flush`). Windowed views, the index tables and stores other than
RocksDB (the agent tests' memory store) stay on Faust's table path.
"""

import shutil
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from faust.types import TP

from streams.app import app, bytes_table, settings
from streams.faust_patches import Producer, partition_items, stored_value
from streams.store import Store
from streams.topics import repartition_name
from tables.listing import INDEX_SEPARATOR, Data, Found, Query, select
from tables.registry import VIEWS, promoted
from tables.version_store import changelog_of
from tables.view import View
from tables.windows import WINDOW_RETENTION


def _table(view: View) -> Any:
    if promoted(view):
        return app.Table(view.table_name, partitions=settings.partitions, key_type=bytes,
                         value_type=bytes, changelog_topic=_built_changelog(view))
    if view.window is None:
        return bytes_table(view.table_name)
    # JSON keys: a windowed table's keys are (key, (window start, window end)).
    return app.Table(view.table_name, partitions=settings.partitions, key_type=str,
                     value_type=bytes)


def _built_changelog(view: View) -> Any:
    """A built version's changelog as its Faust table's: the same raw key (the row key) and
    value (the row's JSON) as Faust's own changelog of a bytes table."""
    return app.topic(changelog_of(view), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw",
                     partitions=settings.partitions, compacting=True, deleting=False,
                     acks=False, internal=True, maxsize=131_072, allow_empty=True)


def resident_topics(view: View) -> list[str]:
    """The topics the version had while resident: the changelogs Faust gave its tables (the
    rows and, if it has one, the index), `<app id>-<table>-changelog`, and the repartition
    topic the app forwarded its events to, if keyed other than by aggregate."""
    names = [view.table_name]
    if view.listing is not None and view.listing.index is not None:
        names.append(f"{view.table_name}-by-{view.listing.index}")
    repartition = [] if view.by_aggregate else [repartition_name(view.table_name)]
    return [f"{app.conf.id}-{name}-changelog" for name in names] + repartition


def drop_resident_tables(view: View) -> None:
    """Delete this worker's RocksDB files of a version that is resident no more."""
    if VIEWS[view.name].version == view.version:
        return
    for path in Path(app.conf.tabledir).glob(f"{view.table_name}-*"):  # and its index's
        shutil.rmtree(path, ignore_errors=True)


VIEW_TABLES = {name: _table(view) for name, view in VIEWS.items()}
WINDOWED = {
    name: VIEW_TABLES[name].tumbling(view.window, expires=WINDOW_RETENTION).relative_to_stream()
    for name, view in VIEWS.items() if view.window
}


INDEX_TABLES = {
    name: bytes_table(f"{view.table_name}-by-{view.listing.index}")
    for name, view in VIEWS.items() if view.listing and view.listing.index
}
"""Per view with an index: one empty value per row, keyed `value NUL row-key`."""


PENDING: dict[str, dict[int, dict[bytes, bytes]]] = {}
"""Per view and partition, the rows folded and not yet flushed."""


def writes_behind(table: Any) -> bool:
    """Whether rows of a plain table (not windowed) are to be written behind."""
    return settings.write_behind and isinstance(table.data, Store)


def written_behind(view: View) -> bool:
    return not view.window and writes_behind(VIEW_TABLES[view.name])


def stored_row(view: View, key: str, partition: int) -> bytes | None:
    """The row a projection folds into, inside a stream: the current window's, if windowed."""
    if written_behind(view):
        raw = PENDING.get(view.name, {}).get(partition, {}).get(key.encode())
        if raw is not None:
            return raw
        return stored_value(VIEW_TABLES[view.name].data, partition, key.encode())
    if not view.window:
        found: bytes | None = VIEW_TABLES[view.name].get(key.encode())
        return found
    try:
        current: bytes = WINDOWED[view.name][key].current()
    except KeyError:
        return None
    return current


def store_row(view: View, key: str, row: bytes, partition: int) -> None:
    if written_behind(view):
        PENDING.setdefault(view.name, {}).setdefault(partition, {})[key.encode()] = row
    elif view.window:
        WINDOWED[view.name][key] = row
    else:
        VIEW_TABLES[view.name][key.encode()] = row


async def flush_rows(view: View) -> None:
    """Write the view's pending rows: all of them into RocksDB before anything is awaited, so
    a reader finds each row in one place or the other; then their changelog records. Each
    partition's stored changelog offset moves once its records are acknowledged."""
    pending = PENDING.pop(view.name, None)
    if not pending:
        return
    table = VIEW_TABLES[view.name]
    put_rows(table, pending)
    await send_rows(table, pending)


def put_rows(table: Any, pending: Mapping[int, Mapping[bytes, bytes]]) -> None:
    """Write rows, by partition, into a RocksDB table's databases: one write batch each."""
    store: Store = table.data
    for partition, rows in pending.items():
        store.write_rows(partition, rows)


async def send_rows(table: Any, pending: Mapping[int, Mapping[bytes, bytes]]) -> None:
    """The changelog records of rows `put_rows` wrote, in whole batches, awaited by the flush
    before the next commit; each partition's stored changelog offset moves once they are
    acknowledged."""
    store: Store = table.data
    topic = table.changelog_topic.get_topic_name()
    producer = app.producer
    assert isinstance(producer, Producer)
    for partition, rows in pending.items():
        tp = TP(topic, partition)
        for future, count in await producer.send_records(
                topic, partition, rows.items(), partial(store.read_rows, partition)):
            future.add_done_callback(lambda done, tp=tp, count=count: _persist(store, tp, done,
                                                                               count))


async def write_now(table: Any, partition: int, rows: Mapping[bytes, bytes]) -> None:
    """Write rows into one partition of a RocksDB table outside any stream: into its
    database, then their changelog records, acknowledged before it returns."""
    store: Store = table.data
    store.write_rows(partition, rows)
    topic = table.changelog_topic.get_topic_name()
    producer = app.producer
    assert isinstance(producer, Producer)
    for future, count in await producer.send_records(topic, partition, rows.items(),
                                                     partial(store.read_rows, partition)):
        sent = await future
        store.set_persisted_offset(TP(topic, partition), sent.offset + count - 1)


def _persist(store: Store, tp: TP, sent: Any, count: int) -> None:
    if not sent.cancelled() and sent.exception() is None:
        store.set_persisted_offset(tp, sent.result().offset + count - 1)


def read_row(view_name: str, key: str) -> dict[str, Any] | None:
    raw = next((rows[key.encode()] for rows in PENDING.get(view_name, {}).values()
                if key.encode() in rows), None)
    if raw is None:
        raw = VIEW_TABLES[view_name].get(key.encode())
    return orjson.loads(raw) if raw is not None else None


def read_windows(view_name: str, key: str, starts: list[float]) -> list[dict[str, Any]]:
    """The rows of a windowed view for `key` in the windows starting at `starts`."""
    table = VIEW_TABLES[view_name]
    rows = []
    for start in starts:
        raw = table.get((key, table.window.current(start)))
        if raw is not None:
            rows.append(orjson.loads(raw))
    return rows


def store_index(view: View, before: Data | None, after: Data, key: str) -> None:
    """Move the row's index entry from what it was to what it is (new entry first), inside a
    stream: the entry lands in the row's partition."""
    assert view.listing is not None
    old, new = view.listing.index_key(before, key), view.listing.index_key(after, key)
    if old == new:
        return
    index = INDEX_TABLES[view.name]
    if new is not None:
        index[new.encode()] = b""
    if old is not None:
        index.pop(old.encode(), None)


def rewrite_index_entry(view: View, data: Data, key: str) -> None:
    """Write the row's index entry again, inside a stream, whether or not this worker has it:
    its changelog record may be what a crash lost."""
    assert view.listing is not None
    entry = view.listing.index_key(data, key)
    if entry is not None:
        INDEX_TABLES[view.name][entry.encode()] = b""


def list_partition(view: View, partition: int, query: Query) -> tuple[list[Found], bool]:
    """One partition's first `query.limit` matching rows past the cursor, in key order, and
    whether more may follow; read from the index when the query filters on it."""
    assert view.listing is not None
    indexed = view.listing.indexed
    if indexed is not None and indexed.name in query.wanted:
        rows = _indexed_rows(view, partition, f"{query.wanted[indexed.name]}{INDEX_SEPARATOR}",
                             query.after or "")
    else:
        rows = _rows(view, partition, query.after or "")
    return select(rows, view.listing, query)


def _rows(view: View, partition: int, start: str) -> Iterator[Found]:
    for key, raw in partition_items(VIEW_TABLES[view.name].data, partition, start.encode()):
        yield key.decode(), orjson.loads(raw)["data"]


def _indexed_rows(view: View, partition: int, prefix: str, start: str) -> Iterator[Found]:
    begin = prefix.encode()
    rows = VIEW_TABLES[view.name].data
    for entry, _ in partition_items(INDEX_TABLES[view.name].data, partition,
                                    begin + start.encode()):
        if not entry.startswith(begin):
            return
        key = entry[len(begin):]
        raw = stored_value(rows, partition, key)
        if raw is not None:
            yield key.decode(), orjson.loads(raw)["data"]


def windows_between(view: View, partition: int, begin: float, end: float) -> Iterator[Data]:
    """The data of a windowed view's rows in one partition whose window starts in
    [begin, end): a scan of the partition (its keys are JSON `[key, [start, end]]`)."""
    for raw_key, raw in partition_items(VIEW_TABLES[view.name].data, partition, b""):
        try:
            _, (start, _) = orjson.loads(raw_key)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            continue
        if begin <= start < end:
            yield orjson.loads(raw)["data"]
