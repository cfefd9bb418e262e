"""Tables a worker left after a crash may hold rows their changelogs lack: they are removed
and restored; after a clean stop they are kept."""

from pathlib import Path

from streams.store import discard_after_crash, mark_clean_stop


def tables_with_a_row(root: Path) -> Path:
    tables = root / "v1" / "tables"
    (tables / "orders-v1-0.db").mkdir(parents=True)
    (tables / "orders-v1-0.db" / "000001.sst").write_bytes(b"row")
    return tables


def test_tables_left_by_a_crash_are_removed(tmp_path: Path) -> None:
    tables = tables_with_a_row(tmp_path)
    assert discard_after_crash(tables)
    assert not tables.exists()


def test_tables_left_by_a_clean_stop_are_kept_once(tmp_path: Path) -> None:
    tables = tables_with_a_row(tmp_path)
    mark_clean_stop(tables)
    assert not discard_after_crash(tables)
    assert (tables / "orders-v1-0.db" / "000001.sst").exists()
    assert discard_after_crash(tables)  # the mark is used up: a crash now is a crash


def test_a_first_start_has_nothing_to_remove(tmp_path: Path) -> None:
    assert not discard_after_crash(tmp_path / "v1" / "tables")
