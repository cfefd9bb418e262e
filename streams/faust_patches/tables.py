"""Tables: standby copies kept current, the current event, reads of one partition's database.

Tables. Inside a batch from `take_events` Faust sets no current event, and a table write
needs one to pick its partition (faust-streaming issue #497): `as_current` names it. A
changelog created moments ago can show 0 partitions, which Faust took for a mismatch.
A list query reads one partition's database from a key on (`partition_items`): Faust's own
iteration walks every active partition, always from the first key.
"""

import weakref
from collections.abc import (
    Iterable,
    Iterator,
)
from typing import Any

import faust
from faust import EventT
from faust import streams as faust_streams
from faust.stores import rocksdb
from faust.types import StoreT


class Table(faust.Table):
    """Faust's table, which keeps its standby copies current, and waits for a changelog
    topic it has just created to show its partitions instead of failing every write.

    Faust buffers a standby's changelog records and writes them only 1,000 at a time (its
    recovery buffer size), or when an active recovery ends: a standby of a table written
    less often trailed its active by up to 1,000 rows, and was missing new keys, so reads
    served from it answered 404 or an old row. Here each standby record is written at once.

    Faust checks once per table that the changelog has as many partitions as the stream
    writing to it. A changelog created moments ago can still show 0 partitions in the
    consumer's metadata, and Faust then raised PartitionsMismatch on every write (every
    saga step of a worker was dead-lettered that way). A count of 0 is not a mismatch: the
    check is left for a later write, when the metadata has caught up.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("standby_buffer_size", 1)
        super().__init__(*args, **kwargs)

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return
        super()._verify_source_topic_partitions(source_topic)


def as_current(event: EventT) -> None:
    """Make `event` the current event for the table operations that follow in this task: a
    table read or write picks its partition's store and changelog partition from Faust's
    current event, which `take_events` batches do not set (faust-streaming issue #497)."""
    faust_streams._current_event.set(weakref.ref(event))


def stored_value(store: StoreT[Any, Any], partition: int, key: bytes) -> bytes | None:
    """The value the RocksDB store holds for `key` in one partition's database."""
    assert isinstance(store, rocksdb.Store)
    value: bytes | None = store._db_for_partition(partition).get(key)
    return value


def partition_value(table: Any, partition: int, key: bytes) -> bytes | None:
    """`table`'s value for `key`, a key of `partition`, as this worker holds it: from that
    partition's RocksDB database if open here. Faust's read looks in every open partition's
    database, twice for a key it lacks (a membership test, then the read); a request waiting
    for a command's result looks up a key not there yet. Faust's read for any other store."""
    store = table.data
    if not isinstance(store, rocksdb.Store):
        value: bytes | None = table.get(key)
        return value
    database = store._dbs.get(partition)
    return None if database is None else database.get(key)


def estimated_keys(store: rocksdb.Store, partitions: Iterable[int]) -> int | None:
    """RocksDB's own estimate of the keys in those of `partitions` this store has open; None if
    it has none of them open. Faust keeps the databases by partition in `_dbs`."""
    counts = [db.property_int_value("rocksdb.estimate-num-keys")
              for db in (store._dbs.get(partition) for partition in partitions) if db is not None]
    known = [count for count in counts if count is not None]
    return sum(known) if known else None


def partition_items(store: StoreT[Any, Any], partition: int,
                    start: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The keys and values of one partition's RocksDB database in key order, from `start` on:
    Faust iterates only every active partition at once, from the first key."""
    assert isinstance(store, rocksdb.Store)
    database = store._db_for_partition(partition)
    for key, value in database.items(from_key=start):
        if key != store.offset_key:
            yield key, value
