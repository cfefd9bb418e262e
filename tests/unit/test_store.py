"""Every RocksDB database a worker opens charges one shared memory budget; a restore keeps
the row that came furthest."""

import gc
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import orjson
import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from streams import commands as c
from streams import store as store_module
from streams.app import app
from streams.envelopes import Command
from streams.faust_patches import partition_items, stored_value
from streams.store import (
    PER_DATABASE,
    SharedOptions,
    Store,
    budget,
    is_behind,
    parsed_progress,
    progress_of,
)
from tables.fold import fold
from tests.unit.memory_system import AT, MemorySystem


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
    assert progress_of(b'{"version":4,"name":"x"}') == 4
    assert progress_of(b'{"versions":{"a":2,"b":5},"data":{"version":9}}') == 7
    assert progress_of(b'{"versions":{},"data":{}}') == 0
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


def revoking(store: Store, *partitions: int) -> None:
    table = SimpleNamespace(changelog_topic=SimpleNamespace(topics={"changelog"}))
    store.revoke_partitions(table, {TP("changelog", p) for p in partitions})


def test_a_rebalance_drops_revoked_handles_without_collecting_garbage(
    tmp_path: Path, monkeypatch: Any,
) -> None:
    store = StoreIn(tmp_path)
    store._db_for_partition(0)[b"k"] = b"v"
    store._db_for_partition(1)
    collections = []
    monkeypatch.setattr(store_module.gc, "collect", lambda: collections.append(1))
    revoking(store, 0)
    assert set(store._dbs) == {1}
    assert collections == []
    assert store._db_for_partition(0)[b"k"] == b"v"  # its lock went with its last reference
    assert collections == []


def test_a_revoked_handle_a_reference_cycle_holds_is_collected_when_its_partition_reopens(
    tmp_path: Path,
) -> None:
    store = StoreIn(tmp_path)
    store._db_for_partition(0)[b"k"] = b"v"
    gc.disable()
    try:
        cycle: dict[str, Any] = {"db": store._dbs[0]}
        cycle["self"] = cycle
        del cycle
        revoking(store, 0)
        assert store._db_for_partition(0)[b"k"] == b"v"
    finally:
        gc.enable()


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


LEADING = [
    b'{"version":12}', b'{"version":0,"a":1}', b'{"version":7,"data":{"version":99}}',
    b'{"version":1.5,"a":1}', b'{"version":-3}', b'{"version":"4"}', b'{"version":true}',
    b'{"version":05}', b'{"version":', b'{"version":12',
    b'{"versions":{"o-1":3,"o-2":4},"data":{"lines":[{"a":"}"}]}}',
    b'{"versions":{"o}1":3,"o\\"}2":4},"data":{}}', b'{"versions":{"o-1":{"x":1}},"data":1}',
    b'{"versions":{"o-1":"3"}}', b'{"versions":{', b'{"versions":{"o-1":3',
    b'{"name":"x","versions":{"a":1}}', b'{"lines":{"version-sku":2}}',
]


@pytest.mark.parametrize("row", LEADING)
def test_a_leading_version_reads_as_parsing_the_whole_row_does(row: bytes) -> None:
    assert progress_of(row) == parsed_progress(row)


@given(st.dictionaries(st.text(), st.integers(0, 2**40)), st.text(), st.integers(0, 2**40))
def test_any_versions_read_without_parsing_the_row_as_with_it(
    versions: dict[str, int], text: str, version: int,
) -> None:
    for row in ({"versions": versions, "data": {"note": text, "versions": {text: 1}}},
                {"version": version, "note": text, "versions": {"x": 1}}):
        value = orjson.dumps(row)
        assert progress_of(value) == parsed_progress(value) == (
            sum(versions.values()) if "versions" in row and "version" not in row else version)


def written_rows() -> list[bytes]:
    """Every aggregate state and view row of a small shop, as the workers write them."""
    system = MemorySystem()

    def submit(aggregate_id: str, payload: c.Message) -> None:
        system.submit(Command(command_id=uuid4(), type=type(payload).__name__,
                              aggregate_id=aggregate_id, issued_at=AT, payload=payload))

    submit("sku-1", c.RegisterProduct(name="a", price=Decimal("2.50"), stock=5))
    submit("o-1", c.PlaceOrder(customer_id="cust-1", lines=[c.OrderLine(sku="sku-1", quantity=2)]))
    submit("o-2", c.PlaceOrder(customer_id="cust-1", lines=[c.OrderLine(sku="sku-1", quantity=9)]))
    states = [state.model_dump_json().encode() for (kind, _), state in system.states.items()]
    views = [orjson.dumps(row) for rows in fold(system.log).values() for row in rows.values()]
    assert len(states) == 3 and len(views) >= 4
    return states + views


def test_the_rows_we_write_are_read_without_parsing_them(monkeypatch: Any) -> None:
    rows = written_rows()
    expected = [parsed_progress(row) for row in rows]

    def parsed(value: bytes) -> None:
        raise AssertionError(f"parsed whole: {value[:60]!r}")

    monkeypatch.setattr(store_module, "parsed_progress", parsed)
    assert [progress_of(row) for row in rows] == expected
    assert None not in expected
