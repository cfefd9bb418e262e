"""Every RocksDB database a worker opens charges one shared memory budget; a restore keeps
the row that came furthest."""

from pathlib import Path
from types import SimpleNamespace

import orjson
from faust.types import TP

from streams.app import app
from streams.faust_patches import partition_items, stored_value
from streams.store import PER_DATABASE, SharedOptions, Store, budget, is_behind, progress_of


def test_memtables_of_every_partition_database_are_charged_to_one_shared_cache(
    tmp_path: Path,
) -> None:
    shared, memtables = budget()
    before = memtables.get_usage()
    options = SharedOptions(**PER_DATABASE, use_rocksdict=True)
    databases = [options.open(tmp_path / f"partition-{n}") for n in range(3)]
    for database in databases:
        for n in range(2000):
            database[f"key-{n}".encode()] = b"x" * 200
    assert memtables.get_usage() > before
    assert shared.get_usage() >= memtables.get_usage()
    for database in databases:
        database.close()


class StoreIn(Store):
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        super().__init__("rocksdb-shared://", app, SimpleNamespace(name="restore-test"))

    @property
    def path(self) -> Path:
        return self.directory

    @property
    def basename(self) -> Path:
        return Path("restore-test")


def changelog(*records: tuple[bytes, bytes | None]) -> list[SimpleNamespace]:
    return [SimpleNamespace(message=SimpleNamespace(tp=TP("changelog", 0), partition=0,
                                                    offset=offset, key=key, value=value))
            for offset, (key, value) in enumerate(records)]


def test_a_restore_keeps_the_row_that_came_furthest_not_the_last_written(tmp_path: Path) -> None:
    store = StoreIn(tmp_path)
    store.apply_changelog_batch(changelog(
        (b"order-1", b'{"status": "paid", "version": 3}'),
        (b"order-1", b'{"status": "placed", "version": 1}'),  # sent late by a replaced worker
        (b"cust-1", b'{"versions": {"order-1": 3, "order-2": 1}}'),
        (b"cust-1", b'{"versions": {"order-1": 2, "order-2": 1}}'),
        (b"plain", b"first"),
        (b"plain", b"second"),
    ), to_key=None, to_value=None)
    store.apply_changelog_batch(changelog(
        (b"order-1", b'{"status": "confirmed", "version": 2}'),
        (b"cust-1", None),
    ), to_key=None, to_value=None)
    db = store._db_for_partition(0)
    assert orjson.loads(db[b"order-1"]) == {"status": "paid", "version": 3}
    assert db.get(b"cust-1") is None
    assert db[b"plain"] == b"second"
    assert store.persisted_offset(TP("changelog", 0)) == 1


def test_progress_is_a_rows_version_or_the_sum_of_its_aggregates_versions() -> None:
    assert progress_of(b'{"version": 4}') == 4
    assert progress_of(b'{"versions": {"a": 2, "b": 5}}') == 7
    assert progress_of(b'{"name": "x"}') is None
    assert progress_of(b"not json") is None
    assert progress_of(b"[1, 2]") is None
    assert progress_of(None) is None
    assert is_behind(b'{"version": 1}', b'{"version": 2}')
    assert not is_behind(b'{"version": 2}', b'{"version": 2}')
    assert not is_behind(b'{"version": 1}', None)


def test_a_store_told_to_forget_its_progress_restores_from_the_start_once(
    tmp_path: Path,
) -> None:
    store = StoreIn(tmp_path)
    tp = TP("changelog", 0)
    store.apply_changelog_batch(changelog((b"k", b'{"version": 1}')), to_key=None,
                                to_value=None)
    assert store.persisted_offset(tp) == 0
    store.forget_progress()
    assert store.persisted_offset(tp) is None
    store.apply_changelog_batch(changelog((b"k", b'{"version": 2}'), (b"k", b'{"version": 1}')),
                                to_key=None, to_value=None)
    assert store.persisted_offset(tp) == 1
    assert orjson.loads(store._db_for_partition(0)[b"k"]) == {"version": 2}


def test_one_partition_reads_in_key_order_from_a_key_without_faust_bookkeeping(
    tmp_path: Path,
) -> None:
    store = StoreIn(tmp_path)
    store.apply_changelog_batch(changelog(
        (b"paid\0o-2", b""), (b"confirmed\0o-9", b""), (b"paid\0o-1", b""), (b"placed\0o-3", b""),
    ), to_key=None, to_value=None)
    assert store.offset_key in store._db_for_partition(0).keys()  # Faust's own, kept out
    assert [key for key, _ in partition_items(store, 0, b"paid\0")] == [
        b"paid\0o-1", b"paid\0o-2", b"placed\0o-3"]
    assert [key for key, _ in partition_items(store, 0, b"paid\0o-1\0")] == [
        b"paid\0o-2", b"placed\0o-3"]
    assert stored_value(store, 0, b"paid\0o-2") == b""


def records(*rows: tuple[bytes, bytes | None], first: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(key=key, value=value, offset=offset)
            for offset, (key, value) in enumerate(rows, start=first)]


def test_a_bulk_restore_writes_rows_and_their_offset_together_keeping_the_furthest_row(
    tmp_path: Path,
) -> None:
    store = StoreIn(tmp_path)
    tp = TP("changelog", 0)
    store.forget_progress()
    store.write_restored(tp, records(
        (b"order-1", b'{"status": "paid", "version": 3}'),
        (b"order-1", b'{"status": "placed", "version": 1}'),  # sent late by a replaced worker
        (b"gone", b"row"),
        (b"plain", b"first"),
    ))
    assert store.persisted_offset(tp) == 3  # a restore from the start counts as done
    store.write_restored(tp, records(
        (b"order-1", b'{"status": "confirmed", "version": 2}'),  # behind the stored row
        (b"gone", None),
        (b"plain", b"second"),
        (b"gone", b"back"),
        first=10,
    ))
    db = store._db_for_partition(0)
    assert orjson.loads(db[b"order-1"]) == {"status": "paid", "version": 3}
    assert db[b"plain"] == b"second" and db[b"gone"] == b"back"
    assert store.persisted_offset(tp) == 13
    store.write_restored(tp, [])
    assert store.persisted_offset(tp) == 13
