"""Comparing view versions: new fields are expected, anything else different is named; rows
that have not folded the same events are not level (the comparison reads them again)."""

from dataclasses import replace

from tables.compare import level, row_differences
from tables.orders import VIEW, VIEW_V2


def row(version: int = 1, **data: object) -> dict[str, object]:
    return {"data": {"order_id": "o1", "status": "placed", **data},
            "versions": {"o1": version}, "occurred_at": "2026-01-01T11:00:00+00:00"}


def test_a_field_the_new_version_declares_is_expected() -> None:
    assert list(row_differences("o1", VIEW, VIEW_V2, row(), row(channel="web"))) == []


def test_a_field_folded_differently_is_named_with_both_values() -> None:
    found = list(row_differences("o1", VIEW, VIEW_V2, row(), row(status="paid", channel="web")))
    assert found == ["o1: status: v1 'placed', v2 'paid'"]


def test_a_field_new_but_undeclared_is_a_difference() -> None:
    undeclared = replace(VIEW_V2, new_fields=frozenset())
    assert list(row_differences("o1", VIEW, undeclared, row(), row(channel="web"))) == [
        "o1: channel: v1 (no such field), v2 'web'"]


def test_a_key_in_one_version_only_is_named() -> None:
    assert list(row_differences("o1", VIEW, VIEW_V2, row(), None)) == ["o1: only in v1"]
    assert list(row_differences("o1", VIEW, VIEW_V2, None, row())) == ["o1: only in v2"]


def test_rows_at_different_versions_are_named() -> None:
    assert list(row_differences("o1", VIEW, VIEW_V2, row(version=2), row(channel="web"))) == [
        "o1: folds different events: v1 {'o1': 2}, v2 {'o1': 1}"]


def test_only_rows_that_folded_the_same_events_are_level() -> None:
    assert level(row(), row(status="paid"))
    assert not level(row(version=2), row())
    assert not level(row(), None)
    assert not level(None, row())
