"""Read-your-writes: whether a view's row reflects a token, waiting for it, and how far behind.

A view keyed by aggregate is folded straight from the event log, so a row in partition Q
reflects a token once the projection has folded the token's positions in Q. A view fed
through a repartition topic learns how far along each event-log partition it has got from
its records and the forwarder's watermarks.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.app import settings
from streams.partitioning import owning_partition
from streams.tokens import Token
from tables.progress import progress
from tables.registry import progress_name
from tables.view import View
from web import monitoring


@dataclass(frozen=True)
class Wanted:
    """What a reader asked the row to reflect: a token's positions, or an aggregate version."""

    token: Token | None = None
    min_version: int | None = None


def reached(view: View, partition: int) -> dict[int, int]:
    """Event-log partition -> last offset this view's partition has folded (or seen pass)."""
    if view.by_aggregate:
        applied = progress.applied.get((progress_name(view), partition))
        return {} if applied is None else {partition: applied}
    return dict(progress.sources[progress_name(view), partition])


def _recorded(rows: Any, aggregate_id: str) -> int:
    """The highest version of the aggregate that the row (or windowed rows) records."""
    rows = rows if isinstance(rows, list) else [rows] if rows else []
    return max((row["versions"].get(aggregate_id, 0) for row in rows), default=0)


def behind(view: View, partition: int, wanted: Wanted, row: Any, key: str) -> dict[str, int]:
    """What is still missing: per event-log partition, how many events short of the token.

    A row that records the token's aggregate at its version reflects the token whatever the
    positions say (they are known only for records folded since this worker started)."""
    missing: dict[str, int] = {}
    token = wanted.token
    if token is not None and _recorded(row, token.aggregate_id) < token.version:
        have = reached(view, partition)
        for source, offset in token.positions:
            if view.by_aggregate and source != partition:
                continue  # events there never touch rows here
            if have.get(source, -1) < offset:
                missing[f"events[{source}]"] = offset - have.get(source, -1)
    if wanted.min_version is not None and _recorded(row, key) < wanted.min_version:
        missing["versions"] = wanted.min_version - _recorded(row, key)
    return missing


async def wait(view: View, key: str, wanted: Wanted, timeout: float,
               read: Callable[[], Any]) -> tuple[Any, dict[str, int]]:
    """Wait, woken by the projection, until the row reflects what is wanted or time is up.

    `read()` returns the row; returns the last row read and what it still lacks."""
    partition = owning_partition(key, settings.partitions)
    last: list[Any] = [None]

    def satisfied() -> bool:
        last[0] = read()
        return not behind(view, partition, wanted, last[0], key)

    started = time.monotonic()
    await progress.wait_until(progress_name(view), partition, satisfied, timeout)
    missing = behind(view, partition, wanted, last[0], key)
    if wanted.token is not None or wanted.min_version is not None:
        monitoring.READ_WAIT.labels(view.name).observe(time.monotonic() - started)
        if missing:
            monitoring.STALE_READS.labels(view.name).inc()
    return last[0], missing


def lag(view: View, key: str) -> dict[str, float | int | None]:
    """How far the projection of the key's partition trails its input: records and seconds."""
    partition = owning_partition(key, settings.partitions)
    behind = monitoring.partition_lag(view.name, partition, time.time())
    return {"records": behind.records, "seconds": behind.seconds}


async def wait_partition(view: View, partition: int, wanted: Wanted, timeout: float,
                         read: Callable[[], Any]) -> dict[str, int]:
    """Wait, woken by the projection, until a whole partition of the view reflects the token
    (`read()` gives the token's own row when it lives there); returns what it still lacks."""
    if wanted.token is None:
        return {}

    def lacking() -> dict[str, int]:
        return behind(view, partition, wanted, read(), "")

    await progress.wait_until(progress_name(view), partition, lambda: not lacking(), timeout)
    missing = lacking()
    if missing:
        monitoring.STALE_READS.labels(view.name).inc()
    return missing
