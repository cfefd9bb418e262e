"""Lag and metrics on every worker: GET /lag (JSON) and GET /metrics (Prometheus text)."""

import asyncio
import logging
import math
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean

from faust.exceptions import ConsumerNotStarted
from faust.stores import rocksdb
from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from agents import dead_letters, retry
from agents.command_handler import decided
from agents.dead_letter_watch import LEDGER
from agents.repartition import INPUT_TOPIC
from streams import topics
from streams.app import app
from streams.faust_patches import estimated_keys
from streams.restore import progress as restore_progress
from tables import results
from tables.progress import progress
from tables.registry import VIEWS
from tables.storage import VIEW_TABLES
from tables.subscriptions import subscriptions

PROJECTIONS: dict[str, str] = {**INPUT_TOPIC, results.NAME: topics.command_results.get_topic_name()}
"""Every projection this worker folds, by name, and the topic it folds."""

log = logging.getLogger(__name__)

RESERVOIR = 1024
LOG_END_INTERVAL = 2.0
LOG_END_TIMEOUT = 5.0
PERCENTILES = (50, 95, 99)
# Past the longest a read may wait (30 s), to minutes: a view catching up is slow, not lost.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

REGISTRY = CollectorRegistry()
APPLIED_LATENCY = Histogram(
    "shopstream_view_applied_latency_seconds",
    "From the command's acceptance (its record's time) to its record folded into the view",
    ["view"], buckets=BUCKETS, registry=REGISTRY)
STALE_READS = Counter(
    "shopstream_stale_reads_total",
    "View reads answered stale: the wanted token or version was not reached in time",
    ["view"], registry=REGISTRY)
READ_WAIT = Histogram(
    "shopstream_read_wait_seconds", "How long a view read waited for its token or version",
    ["view"], buckets=BUCKETS, registry=REGISTRY)
COMMANDS_SUBMITTED = Counter(
    "shopstream_commands_submitted_total", "Commands taken over HTTP and produced to Kafka",
    registry=REGISTRY)
SSE_CLIENTS = Gauge("shopstream_sse_clients", "Server-Sent Events streams open on this worker",
                    registry=REGISTRY)
SSE_CLIENTS.set_function(subscriptions.count)

# Series that exist from the start, at zero, let rate() see their first increment.
for _view in VIEWS:
    STALE_READS.labels(_view)
    READ_WAIT.labels(_view)


@dataclass(frozen=True)
class Behind:
    """How far one projection's input partition is behind its log end."""

    records: int | None
    seconds: float | None
    applied: int | None


def records_behind(highwater: int | None, position: int | None) -> int | None:
    """Records after `position` (the last offset done with; None: none yet) up to the log end."""
    if highwater is None:
        return None
    return max(0, highwater - (position + 1 if position is not None else 0))


def seconds_behind(records: int | None, event_time: float | None, now: float) -> float | None:
    """Age of the last applied record's event, or 0.0 once nothing is left to fold (also on a
    partition where nothing was ever folded: an empty one is not behind)."""
    if records == 0:
        return 0.0
    if event_time is None:
        return None
    return round(max(0.0, now - event_time), 3)


def behind(highwater: int | None, applied: int | None, event_time: float | None,
           now: float) -> Behind:
    """Lag of a partition whose projection is done with the record at `applied`."""
    records = records_behind(highwater, applied)
    return Behind(records, seconds_behind(records, event_time, now), applied)


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile `q` (0-100] of an ascending sample; None if it is empty."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def summarize(samples: Iterable[float], count: int) -> dict[str, int | float | None]:
    """`count` and the percentiles of `samples` (seconds) in milliseconds."""
    ordered = sorted(samples)
    summary: dict[str, int | float | None] = {"count": count}
    for q in PERCENTILES:
        value = percentile(ordered, q)
        summary[f"p{q}"] = None if value is None else round(value * 1000, 3)
    return summary


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """`histogram.observe` of each amount, with each bucket and the sum moved once. It reaches
    into prometheus_client's Histogram (its upper bounds, per-bucket and sum values):
    `tests/unit/test_monitoring.py` holds it equal to observing one by one."""
    counts = Tally(bisect_left(histogram._upper_bounds, amount) for amount in amounts)
    for bucket, count in counts.items():
        histogram._buckets[bucket].inc(count)
    histogram._sum.inc(math.fsum(amounts))


@dataclass
class _Track:
    histogram: Histogram
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RESERVOIR))
    count: int = 0


class AppliedLatency:
    """Per projection, command accepted to record applied: the Prometheus histogram, plus the
    latest RESERVOIR samples for /lag's percentiles (bounded whatever the traffic)."""

    def __init__(self, names: Iterable[str]) -> None:
        self._tracks: dict[str, _Track] = {}
        for name in names:
            self._track(name)

    def observe(self, name: str, event_times: list[float]) -> None:
        """A progress listener, told each batch a projection folded: O(records), one lock
        per histogram bucket touched rather than two per record."""
        now = time.time()
        seconds = [max(0.0, now - at) for at in event_times]  # a producer's clock may run ahead
        track = self._tracks.get(name) or self._track(name)
        observe_many(track.histogram, seconds)
        track.recent.extend(seconds)
        track.count += len(seconds)

    def summary(self) -> dict[str, dict[str, int | float | None]]:
        return {name: summarize(track.recent, track.count) for name, track in self._tracks.items()}

    def _track(self, name: str) -> _Track:
        track = self._tracks[name] = _Track(APPLIED_LATENCY.labels(name))
        return track


APPLIED = AppliedLatency(PROJECTIONS)
progress.listeners.append(APPLIED.observe)


def projection_lag(now: float) -> dict[str, dict[int, Behind]]:
    """Per projection, per input partition assigned to this worker: how far behind it is."""
    assigned = sorted(_assignment())
    return {name: {tp.partition: partition_lag(name, tp.partition, now)
                   for tp in assigned if tp.topic == topic}
            for name, topic in PROJECTIONS.items()}


def partition_lag(name: str, partition: int, now: float) -> Behind:
    key = (name, partition)
    highwater = _highwater(TP(PROJECTIONS[name], partition))
    return behind(highwater, progress.applied.get(key), progress.event_time.get(key), now)


def _assignment() -> set[TP]:
    try:
        return set(app.consumer.assignment())
    except ConsumerNotStarted:
        return set()


def _highwater(tp: TP) -> int | None:
    """The partition's log end as last seen: by the fetcher, or asked of the broker."""
    try:
        fetched = app.consumer.highwater(tp)
    except Exception:  # revoked since the assignment was read (the consumer has its thread)
        fetched = None
    asked = LOG_ENDS.get(tp)
    known = [end for end in (fetched, asked) if end is not None]
    return max(known) if known else None


LOG_ENDS: dict[TP, int] = {}
"""Log ends asked of the broker. The fetcher's high watermark alone stops moving when a worker
falls behind (it fetches no more of a partition while the records it holds wait), so the lag
would read 0 exactly when it is not."""


async def ask_log_ends() -> None:
    topics = set(PROJECTIONS.values())
    tps = [tp for tp in _assignment() if tp.topic in topics]
    if not tps:
        return
    try:
        ends = await asyncio.wait_for(app.consumer.highwaters(*tps), LOG_END_TIMEOUT)
    except Exception as exc:  # the broker or the assignment moved; the fetcher's figure stays
        log.debug("log ends not known: %r", exc)
        return
    LOG_ENDS.clear()
    LOG_ENDS.update({tp: end for tp, end in ends.items() if end is not None})


@app.timer(LOG_END_INTERVAL)
async def refresh_log_ends() -> None:
    await ask_log_ends()


class ProjectionLag:
    """shopstream_projection_lag_*, computed at scrape time like /lag."""

    def collect(self) -> Iterator[Metric]:
        labels = ["projection", "partition"]
        records = GaugeMetricFamily("shopstream_projection_lag_records",
                                    "Records of the input partition not yet applied", labels=labels)
        seconds = GaugeMetricFamily("shopstream_projection_lag_seconds",
                                    "Age of the last applied event while records remain",
                                    labels=labels)
        for name, partitions in projection_lag(time.time()).items():
            for partition, lag in partitions.items():
                if lag.records is not None:
                    records.add_metric([name, str(partition)], lag.records)
                if lag.seconds is not None:
                    seconds.add_metric([name, str(partition)], lag.seconds)
        yield records
        yield seconds


def view_rows() -> dict[str, int | None]:
    """Per view, RocksDB's estimate of the rows in the partitions this worker holds active
    (None while it holds none of them open); with the memory store (tests), its exact count."""
    actives = _active_partitions()
    rows: dict[str, int | None] = {}
    for name, table in VIEW_TABLES.items():
        store = table.data
        if isinstance(store, rocksdb.Store):
            held = actives.get(table.changelog_topic.get_topic_name(), set())
            rows[name] = estimated_keys(store, held)
        else:
            rows[name] = len(store)
    return rows


def _active_partitions() -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for tp in app.assignor.assigned_actives():
        found.setdefault(tp.topic, set()).add(tp.partition)
    return found


def recovery_remaining() -> dict[str, int]:
    """Changelog records still to restore on this worker, for active and standby tables."""
    recovery = app.tables.recovery
    return {"active": recovery.active_remaining_total(),
            "standby": recovery.standby_remaining_total()}


class Views:
    """shopstream_view_rows_estimate, shopstream_recovery_remaining_records and the bulk
    restore's shopstream_restore_* (streams/restore.py `progress`)."""

    def collect(self) -> Iterator[Metric]:
        rows = GaugeMetricFamily("shopstream_view_rows_estimate",
                                 "Rows of the view in the partitions this worker holds active "
                                 "(RocksDB's estimate)", labels=["view"])
        for name, count in view_rows().items():
            if count is not None:
                rows.add_metric([name], count)
        yield rows
        remaining = GaugeMetricFamily("shopstream_recovery_remaining_records",
                                      "Changelog records still to restore", labels=["tables"])
        for kind, count in recovery_remaining().items():
            remaining.add_metric([kind], count)
        yield remaining
        yield _gauge("shopstream_restore_remaining_records",
                     "Changelog records the bulk restore running now has still to read",
                     restore_progress.remaining)
        yield _gauge("shopstream_restore_rows",
                     "Changelog records read by this worker's latest bulk restore",
                     restore_progress.done)
        yield _gauge("shopstream_restore_rows_per_second",
                     "The latest bulk restore's rate, running or finished", restore_progress.rate())
        yield _gauge("shopstream_restore_cpu_seconds",
                     "The worker's CPU time during its latest finished bulk restore",
                     restore_progress.cpu_seconds)


class DeadLetters:
    """shopstream_dead_letters_total: records this worker parked, by the topic they came from;
    shopstream_commands_total: commands decided here, accepted or rejected;
    shopstream_dead_letters_waiting: dead letters of any worker not yet replayed or discarded;
    shopstream_retries_total: transient failures retried, by what was retried."""

    def collect(self) -> Iterator[Metric]:
        yield _by_topic("shopstream_dead_letters_total",
                        "Records parked on the dead-letter topic, by their source topic",
                        dead_letters.parked)
        yield _gauge("shopstream_dead_letters_waiting",
                     "Dead letters not yet replayed or discarded", len(LEDGER.waiting()))
        yield _by_label("shopstream_commands_total",
                        "Commands this worker decided, by their result's status", decided,
                        label="status")
        yield _by_label("shopstream_retries_total",
                        "Transient failures retried, by what was retried", retry.retried,
                        label="what")


class FaustFigures:
    """Faust's own monitor (app.monitor), read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        monitor = app.monitor
        yield _gauge("faust_events_per_second", "Events processed in the last second",
                     monitor.events_s)
        yield _gauge("faust_messages_per_second", "Messages received in the last second",
                     monitor.messages_s)
        yield _gauge("faust_events_active", "Events being processed now", monitor.events_active)
        yield _gauge("faust_messages_active", "Messages not yet acknowledged",
                     monitor.messages_active)
        yield _gauge("faust_event_runtime_seconds", "Median time a stream took on recent events",
                     monitor.events_runtime_avg)
        yield _mean("faust_commit_latency_seconds", "Mean latency of recent offset commits",
                    monitor.commit_latency)
        yield _mean("faust_send_latency_seconds", "Mean latency of recent produced messages",
                    monitor.send_latency)
        yield _counter("faust_events_total", "Events processed", monitor.events_total)
        yield _counter("faust_messages_received_total", "Messages received",
                       monitor.messages_received_total)
        yield _counter("faust_messages_sent_total", "Messages sent", monitor.messages_sent)
        yield _counter("faust_send_errors_total", "Produce requests that failed",
                       monitor.send_errors)
        yield _counter("faust_rebalances_total", "Rebalances this worker has seen",
                       monitor.rebalances)
        yield _by_topic("faust_topic_messages_received_total", "Messages received, by topic",
                        monitor.messages_received_by_topic)
        yield _by_topic("faust_topic_messages_sent_total", "Messages sent, by topic",
                        monitor.messages_sent_by_topic)


def _gauge(name: str, documentation: str, value: float) -> Metric:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> Metric:
    return CounterMetricFamily(name, documentation, value=value)


def _mean(name: str, documentation: str, recent: Iterable[float]) -> Metric:
    values = list(recent)  # one C-level copy: the deque may grow while we read
    return GaugeMetricFamily(name, documentation, value=fmean(values) if values else None)


def _by_topic(name: str, documentation: str, counts: Mapping[str, int]) -> Metric:
    return _by_label(name, documentation, counts, label="topic")


def _by_label(name: str, documentation: str, counts: Mapping[str, int], label: str) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in list(counts.items()):
        family.add_metric([value], count)
    return family


REGISTRY.register(ProjectionLag())
REGISTRY.register(FaustFigures())
REGISTRY.register(DeadLetters())
REGISTRY.register(Views())


@app.page("/lag")
class Lag(View):
    async def get(self, request: Request) -> Response:
        await ask_log_ends()
        lag = projection_lag(time.time())
        return self.json({
            "worker": str(app.conf.canonical_url),
            "projections": {name: {str(p): asdict(b) for p, b in partitions.items()}
                            for name, partitions in lag.items()},
            "latency_ms": APPLIED.summary(),
        })


@app.page("/metrics")
class Metrics(View):
    async def get(self, request: Request) -> Response:
        # As a header: aiohttp refuses a content_type argument that names its charset.
        return self.bytes(generate_latest(REGISTRY),
                          headers={"Content-Type": CONTENT_TYPE_LATEST})
