"""Lag arithmetic and the latency summary behind GET /lag and GET /metrics."""

import time

import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from agents import retry
from streams.app import app
from web import monitoring
from web.monitoring import (
    BUCKETS,
    REGISTRY,
    RESERVOIR,
    AppliedLatency,
    Behind,
    behind,
    observe_many,
    percentile,
    records_behind,
    seconds_behind,
    summarize,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("highwater", "position", "records"), [
    (10, 9, 0),        # the last record applied: caught up
    (10, 4, 5),
    (10, None, 10),    # nothing folded yet: the whole partition is ahead
    (0, None, 0),      # an empty partition
    (5, 9, 0),         # a highwater older than the progress is never negative
    (None, 3, None),   # no fetch yet: unknown
])
def test_records_behind(highwater: int | None, position: int | None,
                        records: int | None) -> None:
    assert records_behind(highwater, position) == records


def test_seconds_behind_is_zero_once_caught_up_however_old_the_last_event() -> None:
    assert seconds_behind(0, NOW - 3600, NOW) == 0.0
    assert seconds_behind(0, None, NOW) == 0.0  # an empty partition is not behind


def test_seconds_behind_is_the_age_of_the_last_applied_event_while_records_remain() -> None:
    assert seconds_behind(3, NOW - 2.5, NOW) == 2.5
    assert seconds_behind(None, NOW - 2.5, NOW) == 2.5


def test_seconds_behind_is_unknown_before_anything_was_folded_and_never_negative() -> None:
    assert seconds_behind(7, None, NOW) is None
    assert seconds_behind(7, NOW + 5, NOW) == 0.0  # a producer clock ahead of ours


def test_a_partition_is_behind_by_what_follows_its_last_applied_record() -> None:
    assert behind(10, 9, NOW - 60, NOW) == Behind(records=0, seconds=0.0, applied=9)
    assert behind(10, 6, NOW - 60, NOW) == Behind(records=3, seconds=60.0, applied=6)
    assert behind(10, None, None, NOW) == Behind(records=10, seconds=None, applied=None)


def test_percentiles_of_a_known_sample() -> None:
    sample = [float(n) for n in range(1, 101)]
    assert [percentile(sample, q) for q in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([0.25], 99) == 0.25
    assert percentile([], 50) is None


def test_summary_in_milliseconds_with_the_count_of_everything_observed() -> None:
    summary = summarize([0.003, 0.001, 0.002], count=10)
    assert summary == {"count": 10, "p50": 2.0, "p95": 3.0, "p99": 3.0}
    assert summarize([], 0) == {"count": 0, "p50": None, "p95": None, "p99": None}


def test_applied_latency_counts_everything_and_keeps_a_bounded_window() -> None:
    latency = AppliedLatency(["unit-view"])
    latency.observe("unit-view", [time.time() - 100] * (RESERVOIR - 1))
    latency.observe("unit-view", [time.time() - 100])
    latency.observe("unit-view", [time.time() + 100] * RESERVOIR)  # clamped to 0
    # Only the latest RESERVOIR samples are kept: the slow ones have all left the window.
    assert latency.summary()["unit-view"] == {"count": 2 * RESERVOIR, "p50": 0.0, "p95": 0.0,
                                              "p99": 0.0}
    assert REGISTRY.get_sample_value("shopstream_view_applied_latency_seconds_count",
                                     {"view": "unit-view"}) == 2 * RESERVOIR


def test_a_projection_first_seen_on_the_hot_path_is_tracked() -> None:
    latency = AppliedLatency([])
    latency.observe("unit-late", [time.time()])
    assert latency.summary()["unit-late"]["count"] == 1


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=200))
def test_observing_many_at_once_counts_as_observing_each(amounts: list[float]) -> None:
    one_by_one, at_once = (Histogram(f"unit_{name}", "unit", buckets=BUCKETS,
                                     registry=CollectorRegistry()) for name in ("each", "many"))
    for amount in amounts:
        one_by_one.observe(amount)
    observe_many(at_once, amounts)
    each, many = ([(sample.name.removeprefix(f"unit_{name}"), sample.labels, sample.value)
                   for metric in histogram.collect() for sample in metric.samples
                   if not sample.name.endswith("_created")]
                  for name, histogram in (("each", one_by_one), ("many", at_once)))
    assert [s for s in each if s[0] != "_sum"] == [s for s in many if s[0] != "_sum"]
    assert len(each) == len(BUCKETS) + 3  # each bucket, +Inf, the count and the sum
    assert dict((s[0], s[2]) for s in many)["_sum"] == pytest.approx(
        dict((s[0], s[2]) for s in each)["_sum"])


def test_retries_and_waiting_dead_letters_are_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    # The app's tables (and their recovery) made here, outside a running loop, would leave the
    # recovery's waits on no loop for the agent tests that follow.
    monkeypatch.setattr(monitoring, "view_rows", dict)
    monkeypatch.setattr(monitoring, "recovery_remaining", lambda: {"active": 0, "standby": 0})
    retry.retried["saga batch"] += 1
    text = generate_latest(REGISTRY).decode()
    assert 'shopstream_retries_total{what="saga batch"}' in text
    assert "shopstream_dead_letters_waiting 0.0" in text


def test_the_log_end_is_the_furthest_of_the_fetchers_and_the_brokers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = TP("events", 0)
    fetched = {events: 10}
    monkeypatch.setattr(app.consumer, "highwater", lambda tp: fetched[tp])
    monkeypatch.setattr(monitoring, "LOG_ENDS", {events: 25})
    assert monitoring._highwater(events) == 25  # the fetcher stopped fetching a busy partition
    fetched[events] = 30
    assert monitoring._highwater(events) == 30
    monkeypatch.setattr(monitoring, "LOG_ENDS", {})
    assert monitoring._highwater(events) == 30
