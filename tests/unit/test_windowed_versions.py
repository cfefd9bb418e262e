"""A built version of a windowed view (sales): one row per sku and hour, keyed as the
verify fold keys it, from the event's time; a batch forwarded again folds to the same rows;
an hour past the resident table's expiry is neither folded nor compared; compare matches
Faust's windowed keys with the built version's."""

import asyncio
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest

from ops import views
from streams import events as e
from streams.envelopes import Event
from tables import sales
from tables.fold import fold
from tables.view import Data, apply
from tables.windows import (
    WINDOW_RETENTION,
    built_slot,
    from_faust,
    split,
    start_at,
    window_key,
)
from tests.unit.test_sales import LINES, NOON, event

V2 = replace(sales.VIEW, version=2)


def log_over_two_hours() -> list[Event]:
    confirmed = e.OrderConfirmed(customer_id="c", lines=LINES, total=LINES[0].unit_price)
    cancelled = e.OrderCancelled(customer_id="c", reason="", lines=LINES)
    return [event("o1", 2, confirmed, NOON + timedelta(minutes=5)),
            event("o2", 2, confirmed, NOON + timedelta(minutes=59, seconds=59)),
            event("o1", 3, cancelled, NOON + timedelta(hours=1)),
            event("o3", 2, confirmed, NOON + timedelta(hours=1, minutes=30))]


def built(forwarded: list[Event], now: float) -> dict[str, Data]:
    """The rows a build folds from what stage 1 forwarded (each event once per sku)."""
    rows: dict[str, Data] = {}
    for item in forwarded:
        for key in V2.keys(item):
            slot = built_slot(V2, key, item, now)
            if slot is not None:
                rows[slot] = apply(V2, rows.get(slot), item, key) or rows[slot]
    return rows


def test_a_built_sales_row_is_one_per_sku_and_hour_of_the_event_time() -> None:
    log = log_over_two_hours()
    rows = built(log, NOON.timestamp())
    assert rows == fold(log, views={"sales": V2})["sales"]  # as verify folds the log
    assert sorted(rows) == ["sku-a@2026-11-23T12:00:00+00:00", "sku-a@2026-11-23T13:00:00+00:00",
                            "sku-b@2026-11-23T12:00:00+00:00", "sku-b@2026-11-23T13:00:00+00:00"]
    assert rows["sku-a@2026-11-23T13:00:00+00:00"]["data"]["units"] == 0  # o1 given back, o3
    assert rows["sku-a@2026-11-23T12:00:00+00:00"]["data"] == {
        "sku": "sku-a", "hour": "2026-11-23T12:00:00+00:00", "units": 4, "revenue": "10.00"}


def test_a_batch_forwarded_again_folds_to_the_same_rows() -> None:
    log = log_over_two_hours()
    again = log[:3] + log[:3] + log[3:]
    assert built(again, NOON.timestamp()) == built(log, NOON.timestamp())


def test_an_hour_past_the_resident_expiry_is_not_folded() -> None:
    log = log_over_two_hours()
    later = (NOON + WINDOW_RETENTION + timedelta(hours=1, seconds=1)).timestamp()
    assert sorted(built(log, later)) == ["sku-a@2026-11-23T13:00:00+00:00",
                                         "sku-b@2026-11-23T13:00:00+00:00"]
    assert built_slot(replace(V2, window=None), "sku-a", log[0], later) == "sku-a"


def test_faust_windowed_keys_read_as_built_row_keys() -> None:
    start = NOON.timestamp()
    faust_key = orjson.dumps(["sku-a", [start, start + 3599.9]]).decode()
    assert from_faust(faust_key) == window_key("sku-a", NOON) == "sku-a@2026-11-23T12:00:00+00:00"
    assert split(from_faust(faust_key)) == ("sku-a", start)
    assert start_at(start) == NOON
    assert from_faust("plain") == "plain"


def compare(monkeypatch: pytest.MonkeyPatch, v1: dict[str, Data],
            v2: dict[str, Data]) -> tuple[int, list[str]]:
    """Compare one partition: v1's rows under Faust's windowed keys, v2's under its own."""
    def faust(key: str) -> str:
        sku, start = split(key)
        return orjson.dumps([sku, [start, start + 3599.9]]).decode()

    async def read_rows(topic: str, partition: int) -> dict[str, bytes]:
        if topic == "sales-v1":
            return {faust(key): orjson.dumps(row) for key, row in v1.items()}
        return {key: orjson.dumps(row) for key, row in v2.items()}

    async def log_ends(partitions: list[int] | None = None) -> dict[int, int]:
        return {0: 10}

    async def wait_folded(*_: Any) -> None:
        return None

    monkeypatch.setattr(views, "log_ends", log_ends)
    monkeypatch.setattr(views, "_wait_folded", wait_folded)
    monkeypatch.setattr(views, "read_rows", read_rows)
    monkeypatch.setattr(views, "changelog_name", lambda view: view.table_name)
    monkeypatch.setattr(views, "RECHECK_PAUSE", 0.0)
    said: list[str] = []
    found = asyncio.run(views.compare(sales.VIEW, V2, said.append, True, 1.0, ()))
    return found, said


def log_hours_ago(hours: int) -> list[Event]:
    """The two hours' events, moved to start `hours` hours before this one."""
    shift = start_at(time.time() // 3600 * 3600 - 3600 * hours) - NOON
    return [item.model_copy(update={"occurred_at": item.occurred_at + shift})
            for item in log_over_two_hours()]


def test_compare_matches_the_resident_windows_with_the_built_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = built(log_hours_ago(2), time.time())
    found, said = compare(monkeypatch, rows, rows)
    assert found == 0 and said == ["4 keys compared, 0 unexpected differences"], said


def test_a_planted_difference_in_one_hour_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = built(log_hours_ago(2), time.time())
    key = sorted(rows)[0]
    planted = {**rows, key: {**rows[key], "data": {**rows[key]["data"], "units": 99}}}
    found, said = compare(monkeypatch, rows, planted)
    assert found == 1, said
    assert said[0].startswith(f"{key}: units: v1 "), said


def test_expired_hours_are_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    log = log_hours_ago(24 * 401)
    rows = built(log, log[0].occurred_at.timestamp())  # folded when recent; expired now
    assert len(rows) == 4
    found, said = compare(monkeypatch, rows, {})
    assert found == 0 and said == ["0 keys compared, 0 unexpected differences"], said
