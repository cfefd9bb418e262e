"""Reads of a built version of a windowed view (sales v2) on the worker: a sku's hours in a
range and a partition's hours for the ranking, from the version's own store, expired hours
left out; a partition not restored here, or a version not built here, cannot be read."""

import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from agents import builders
from agents.version_repartition import RepartitionedBuilder
from streams.app import settings
from streams.partitioning import owning_partition
from tables import sales
from tables.version_store import VersionStore
from tables.windows import WINDOW_RETENTION, start_at, window_key

V2 = replace(sales.VIEW, version=2)
HOUR = 3600


def row(sku: str, start: float, units: int) -> bytes:
    hour = start_at(start).isoformat()
    return orjson.dumps({"versions": {"o1": 2}, "occurred_at": hour,
                         "data": {"sku": sku, "hour": hour, "units": units, "revenue": "1.00"}})


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[float]]:
    """sales v2 built here with sku-a's last two hours and one expired hour; the partition
    and the three starts (oldest first)."""
    builder = RepartitionedBuilder(V2)
    builder.store = VersionStore(tmp_path / "sales-v2")
    partition = owning_partition("sku-a", settings.partitions)
    now = time.time() // HOUR * HOUR
    starts = [now - WINDOW_RETENTION.total_seconds() - 2 * HOUR, now - 2 * HOUR, now - HOUR]
    builder.store.open(partition).put_many(
        {window_key("sku-a", start_at(start)): row("sku-a", start, n)
         for n, start in enumerate(starts, 1)})
    builder.ready.add(partition)
    monkeypatch.setitem(builders.BUILDERS, ("sales", 2), builder)
    return partition, starts


def test_a_skus_hours_are_read_from_the_built_version(built: tuple[int, list[float]]) -> None:
    _, starts = built
    found = builders.read_live_windows(V2, "sku-a", [*starts, starts[-1] + HOUR])
    assert [r["data"]["units"] for r in found] == [2, 3]  # the expired hour left out
    assert builders.read_live_windows(V2, "sku-a", [starts[-1] + HOUR]) == []


def test_a_partitions_hours_in_a_range_are_read_for_the_ranking(
    built: tuple[int, list[float]],
) -> None:
    partition, starts = built
    everything = builders.live_windows_between(V2, partition, 0, starts[-1] + HOUR)
    assert sorted(data["units"] for data in everything) == [2, 3]
    last = builders.live_windows_between(V2, partition, starts[-1], starts[-1] + HOUR)
    assert [data["units"] for data in last] == [3]


def test_a_partition_not_restored_or_a_version_not_built_here_cannot_be_read(
    built: tuple[int, list[float]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    partition, starts = built
    builders.BUILDERS["sales", 2].ready.clear()
    with pytest.raises(LookupError, match=rf"sales-v2 partition {partition} is not here yet"):
        builders.read_live_windows(V2, "sku-a", starts)
    with pytest.raises(LookupError, match="is not here yet"):
        builders.live_windows_between(V2, partition, 0, starts[-1] + HOUR)
    monkeypatch.delitem(builders.BUILDERS, ("sales", 2))
    with pytest.raises(LookupError, match="sales-v2 is not built on this worker"):
        builders.read_live_windows(V2, "sku-a", starts)
