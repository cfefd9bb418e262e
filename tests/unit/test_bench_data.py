"""The benchmark's events are valid, in order per sku, and fold as `verify` folds, into the
products view alone."""

import orjson
import pytest

from bench.data import Expected, counts, fold_into, generate
from streams.envelopes import parse_event
from tables.fold import fold


def test_events_are_spread_evenly_over_the_keys() -> None:
    assert counts(10, 4) == [3, 3, 2, 2]
    with pytest.raises(ValueError, match="at least one event per key"):
        counts(3, 4)


def test_each_sku_has_consecutive_versions_in_log_order() -> None:
    seen: dict[str, list[int]] = {}
    for key, value in generate(1000, 70):
        event = parse_event(value)
        assert key.decode() == event.aggregate_id
        seen.setdefault(event.aggregate_id, []).append(event.version)
    assert len(seen) == 70
    assert all(versions == list(range(1, len(versions) + 1)) for versions in seen.values())
    assert sum(map(len, seen.values())) == 1000


def test_the_same_arguments_give_the_same_bytes() -> None:
    assert list(generate(200, 20, seed=3)) == list(generate(200, 20, seed=3))
    assert list(generate(200, 20, seed=3)) != list(generate(200, 20, seed=4))


def test_expected_rows_are_the_products_view_as_verify_folds_it() -> None:
    expected = Expected()
    events = []
    for key, value in generate(500, 40):
        fold_into(expected, key, value)
        events.append(parse_event(value))
    views = fold(events)
    assert {sku: orjson.loads(row) for sku, row in expected.rows.items()} == views["products"]
    assert not any(rows for name, rows in views.items() if name != "products")
    assert expected.events == 500
    assert expected.version_sum == sum(event.version for event in events)
