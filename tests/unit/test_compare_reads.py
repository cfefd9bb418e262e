"""`views compare` under live traffic, with Kafka replaced by scripted reads: a key whose
rows have not folded the same events is read again once both versions have folded the log
as it is then; what still differs is reported, a difference between level rows at once."""

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ops import views
from tables.orders import VIEW, VIEW_V2


def row(version: int, status: str = "placed", **extra: object) -> bytes:
    return orjson.dumps({"data": {"order_id": "o1", "status": status, **extra},
                         "versions": {"o1": version}, "occurred_at": "2026-01-01T11:00:00+00:00"})


def run(monkeypatch: pytest.MonkeyPatch, reads: list[tuple[bytes | None, bytes | None]],
        ) -> tuple[int, list[str], list[int]]:
    """Compare one partition holding key o1, read as `reads` says each time; the ends the
    comparison waited for, one per read."""
    said: list[str] = []
    waited: list[int] = []
    script: Iterator[bytes | None] = iter(value for pair in reads for value in pair)
    ends = iter(range(10, 100, 10))

    async def log_ends(partitions: list[int] | None = None) -> dict[int, int]:
        return {0: next(ends)}

    async def wait_folded(pair: Any, ends: dict[int, int], *_: Any) -> None:
        waited.append(ends[0])

    async def read_rows(topic: str, partition: int) -> dict[str, bytes]:
        value = next(script)
        return {} if value is None else {"o1": value}

    monkeypatch.setattr(views, "log_ends", log_ends)
    monkeypatch.setattr(views, "_wait_folded", wait_folded)
    monkeypatch.setattr(views, "read_rows", read_rows)
    monkeypatch.setattr(views, "changelog_name", lambda view: view.table_name)
    monkeypatch.setattr(views, "RECHECK_PAUSE", 0.0)
    found = asyncio.run(views.compare(VIEW, VIEW_V2, said.append, True, 1.0, ()))
    return found, said, waited


def test_a_row_one_version_folded_further_is_read_again_and_then_agrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, said, waited = run(monkeypatch, [(row(1), row(2, "rejected", channel="web")),
                                            (row(2, "rejected"), row(2, "rejected",
                                                                     channel="web"))])
    assert found == 0, said
    assert waited == [10, 20]  # the second read waited for the log's end of its moment


def test_a_key_in_one_version_only_until_the_other_folds_it_is_no_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, said, _ = run(monkeypatch, [(row(1), None), (row(1), row(1, channel="web"))])
    assert found == 0, said


def test_a_difference_between_level_rows_is_reported_without_reading_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found, said, waited = run(monkeypatch, [(row(1), row(1, "shipped", channel="web"))])
    assert found == 1
    assert said[0] == "o1: status: v1 'placed', v2 'shipped'"
    assert waited == [10]


def test_rows_that_stay_apart_are_reported_after_the_rereads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apart = (row(1), row(2, channel="web"))
    found, said, waited = run(monkeypatch, [apart] * (1 + views.RECHECKS))
    assert found == 1
    assert said[0] == "o1: folds different events: v1 {'o1': 1}, v2 {'o1': 2}"
    assert len(waited) == 1 + views.RECHECKS
