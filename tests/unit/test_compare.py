"""Comparing view versions: new fields are expected, anything else different is named."""

from dataclasses import replace
from datetime import UTC, datetime

from tables.compare import row_differences
from tables.orders import VIEW, VIEW_V2

SINCE = datetime(2026, 1, 1, 12, tzinfo=UTC)
BEFORE, AFTER = "2026-01-01T11:00:00+00:00", "2026-01-01T13:00:00+00:00"


def row(at: str = BEFORE, version: int = 1, **data: object) -> dict[str, object]:
    return {"data": {"order_id": "o1", "status": "placed", **data},
            "versions": {"o1": version}, "occurred_at": at}


def test_a_field_the_new_version_declares_is_expected() -> None:
    assert list(row_differences("o1", VIEW, VIEW_V2, row(), row(channel="web"), SINCE)) == []


def test_a_field_folded_differently_is_named_with_both_values() -> None:
    found = list(row_differences("o1", VIEW, VIEW_V2, row(), row(status="paid", channel="web"),
                                 SINCE))
    assert found == ["o1: status: v1 'placed', v2 'paid'"]


def test_a_field_new_but_undeclared_is_a_difference() -> None:
    undeclared = replace(VIEW_V2, new_fields=frozenset())
    assert list(row_differences("o1", VIEW, undeclared, row(), row(channel="web"), SINCE)) == [
        "o1: channel: v1 (no such field), v2 'web'"]


def test_a_key_in_one_version_only_is_named_unless_it_moved_since_the_start() -> None:
    assert list(row_differences("o1", VIEW, VIEW_V2, row(), None, SINCE)) == ["o1: only in v1"]
    assert list(row_differences("o1", VIEW, VIEW_V2, None, row(), SINCE)) == ["o1: only in v2"]
    assert list(row_differences("o1", VIEW, VIEW_V2, None, row(at=AFTER), SINCE)) == []


def test_rows_at_different_versions_differ_unless_one_is_in_flight() -> None:
    assert list(row_differences("o1", VIEW, VIEW_V2, row(version=2), row(channel="web"),
                                SINCE)) == ["o1: folds different events: v1 {'o1': 2}, "
                                            "v2 {'o1': 1}"]
    assert list(row_differences("o1", VIEW, VIEW_V2, row(at=AFTER, version=2),
                                row(channel="web"), SINCE)) == []
