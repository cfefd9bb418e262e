"""RocksDB with one memory budget per worker.

Faust opens one database per table partition, each with RocksDB's defaults sized for a
single big database (a 2 GB block cache, three 64 MB write buffers). Here every database
of the worker shares one block cache, and memtables are charged to that same cache through
one write-buffer manager, so the worker's RocksDB memory stays under one limit however many
partitions it holds.

Restoring from a changelog keeps, for each key, the row that has come furthest (see
`progress_of`) rather than the last one written: a worker that lost its partitions while
stopped can still send a few older rows when it runs again, after the new owner's.
"""

import gc
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import orjson
import rocksdict
from faust.stores import STORES, rocksdb
from faust.types import TP, CollectionT, EventT

from streams.faust_patches import partition_database, stored_value
from streams.settings import Settings

log = logging.getLogger(__name__)
SCHEME = "rocksdb-shared"
CLEAN_STOP = "stopped-cleanly"
"""The file a worker leaves beside its tables when it stops cleanly."""
PER_DATABASE = {
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "max_open_files": 256,
}


@cache
def budget() -> tuple[rocksdict.Cache, rocksdict.WriteBufferManager]:
    limit = Settings.from_env().rocksdb_memory
    shared = rocksdict.Cache(limit)
    # Memtables may take half of the budget before RocksDB flushes them.
    memtables = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
        limit // 2, False, shared)
    return shared, memtables


class SharedOptions(rocksdb.RocksDBOptions):
    def as_options(self) -> Any:
        options = super().as_options()
        shared, memtables = budget()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(shared)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(memtables)
        return options


class Store(rocksdb.Store):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rocksdb_options = SharedOptions(**{**PER_DATABASE, **self.options},
                                             use_rocksdict=True)
        self.from_start = False
        self.replayed: set[TP] = set()

    def forget_progress(self) -> None:
        """Restore every partition from its changelog's start next time, keeping per key the
        row that came furthest. For a worker that was out of its group: its own late writes
        moved the offset it restores from past rows the new owner wrote before them."""
        self.from_start = True
        self.replayed.clear()

    def persisted_offset(self, tp: TP) -> int | None:
        if self.from_start and tp not in self.replayed:
            return None
        return super().persisted_offset(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.replayed.add(tp)
        super().set_persisted_offset(tp, offset)

    def revoke_partitions(self, table: CollectionT, tps: Set[TP]) -> None:
        """Faust's, without the full garbage collection it runs after it: one per table at
        every rebalance, each 20-140 ms with the event loop blocked until the worker's objects
        are frozen (`streams.collector`), about half a second of every start. It is there for
        a handle only a reference cycle still holds, whose lock would refuse the next open of
        that partition; `_open_for_partition` collects when that happens instead."""
        for tp in tps:
            if tp.topic not in table.changelog_topic.topics:
                continue
            if self._dbs.pop(tp.partition, None) is not None:
                log.info("closing db %s partition %s", tp.topic, tp.partition)

    def _open_for_partition(self, partition: int) -> Any:
        try:
            return super()._open_for_partition(partition)
        except Exception as exc:
            if "lock" not in repr(exc).lower():
                raise
        gc.collect()
        return super()._open_for_partition(partition)

    def write_rows(self, partition: int, rows: Mapping[bytes, bytes]) -> None:
        """Put rows into one partition's database in one write batch."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in rows.items():
            batch.put(key, value)
        partition_database(self, partition).write(batch)

    def read_rows(self, partition: int, keys: list[bytes]) -> list[bytes | None]:
        database = partition_database(self, partition)
        return [database.get(key) for key in keys]

    def write_restored(self, tp: TP, records: Sequence["ChangelogRecord"]) -> None:
        """Write changelog records of one partition read in bulk, and the offset of the last
        one, in one write batch: the rows and the offset that says they are there land together.
        The row that came furthest is kept, as in `apply_changelog_batch`."""
        if not records:
            return
        database = partition_database(self, tp.partition)
        batch = rocksdict.WriteBatch(raw_mode=True)
        keys = [record.key for record in records]
        latest: dict[bytes, bytes | None] = dict(zip(keys, database.get(keys), strict=True))
        for record in records:
            key, value = record.key, record.value
            if value is None:
                batch.delete(key)
            else:
                current = latest[key]
                if current is not None and is_behind(value, current):
                    continue
                batch.put(key, value)
            latest[key] = value
        batch.put(self.offset_key, str(records[-1].offset).encode())
        database.write(batch)
        self.replayed.add(tp)

    def apply_changelog_batch(self, batch: Iterable[EventT], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        events = list(batch)
        latest: dict[tuple[int, bytes], bytes | None] = {}
        kept = []
        for event in events:
            message = event.message
            slot = (message.partition, message.key)
            if message.value is not None:
                current = (latest[slot] if slot in latest
                           else stored_value(self, message.partition, message.key))
                if is_behind(message.value, current):
                    continue
            latest[slot] = message.value
            kept.append(event)
        super().apply_changelog_batch(kept, to_key, to_value)
        offsets: dict[TP, int] = {}
        for event in events:  # a skipped record is read all the same
            offsets[event.message.tp] = max(event.message.offset,
                                            offsets.get(event.message.tp, -1))
        for tp, offset in offsets.items():
            self.set_persisted_offset(tp, offset)


class ChangelogRecord(Protocol):
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def offset(self) -> int: ...


def discard_after_crash(tables: Path) -> bool:
    """Remove the tables a worker left when it did not stop cleanly; True if it did so.

    A table write reaches RocksDB at once and its changelog record later, before the input's
    offsets are committed. A worker killed in between keeps rows its changelog lacks, and
    when it starts again and handles the same input, each row is already there: nothing is
    written, so the changelog never gets it, and whoever restores the partition next (a
    standby, a new owner, `verify`) has an older row. So after a crash the tables are
    restored from their changelogs instead, and the input handled again writes every row.
    """
    marker = tables / CLEAN_STOP
    if marker.exists():
        marker.unlink()
        return False
    if not tables.is_dir() or not any(tables.iterdir()):
        return False
    log.warning("%s was not stopped cleanly: its tables may hold rows their changelogs lack, "
                "so they are restored from the changelogs", tables)
    shutil.rmtree(tables)
    return True


def mark_clean_stop(tables: Path) -> None:
    if tables.is_dir():
        (tables / CLEAN_STOP).touch()


VERSION = b'{"version":'
VERSIONS = b'{"versions":{'
DIGITS = frozenset(b"0123456789")


def progress_of(value: bytes | None) -> int | None:
    """How far a row has come: the version of the aggregate it folds, or the sum of the
    versions of the aggregates a row folds together; None for values with neither.

    Read for every changelog record a standby applies, so the rows we write put it first
    (aggregate states `{"version":N,...`, view rows `{"versions":{...},...`) and it is read
    from there without parsing the row; any other row is parsed whole."""
    if not value or value[:1] != b"{":
        return None
    if value.startswith(VERSION):
        found = _leading_version(value)
        if found is not None:
            return found
    elif value.startswith(VERSIONS):
        found = _leading_versions(value)
        if found is not None:
            return found
    elif b'"version' not in value:
        return None
    return parsed_progress(value)


def _leading_version(value: bytes) -> int | None:
    end = start = len(VERSION)
    while end < len(value) and value[end] in DIGITS:
        end += 1
    if end == start or end == len(value) or value[end] not in b",}":
        return None
    if value[start] == ord("0") and end - start > 1:  # not JSON: leave it to the parser
        return None
    return int(value[start:end])


def _leading_versions(value: bytes) -> int | None:
    """The versions object ends at its first `}`: values are integers, and a `}` inside a key
    leaves the slice an unterminated string, which does not parse."""
    end = value.find(b"}", len(VERSIONS))
    try:
        versions = orjson.loads(value[len(VERSIONS) - 1:end + 1]) if end > 0 else None
    except orjson.JSONDecodeError:
        return None
    if isinstance(versions, dict) and all(isinstance(v, int) for v in versions.values()):
        return sum(versions.values())
    return None


def parsed_progress(value: bytes) -> int | None:
    """`progress_of` by parsing the whole row: for rows that do not lead with it."""
    try:
        row = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(row, dict):
        return None
    version = row.get("version")
    if isinstance(version, int):
        return version
    versions = row.get("versions")
    if isinstance(versions, dict) and all(isinstance(v, int) for v in versions.values()):
        return sum(versions.values())
    return None


def is_behind(value: bytes, current: bytes | None) -> bool:
    old = progress_of(current)
    if old is None:
        return False
    new = progress_of(value)
    return new is not None and new < old


STORES.aliases[SCHEME] = f"{__name__}:Store"
