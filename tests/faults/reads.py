"""Clients reading every view through a fault: how long any partition went unserved, and
whether a read was ever a 5xx or an older row presented as fresh.

One key per view and partition is read over and over, as through a load balancer: it asks
the running workers (ready ones first, then the others), tries the next one when a worker
does not answer or answers 5xx, and knows a stopped (SIGSTOP) worker by its failing health
check, which the harness stands in for. A key is tracked from its first 200 on; from then on
every read that is not a 200 is time the key's partition went unserved.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from streams.partitioning import owning_partition
from tests.integration.cluster import Worker

INTERVAL = 0.5
READ_TIMEOUT = aiohttp.ClientTimeout(total=8.0)


@dataclass
class Tracked:
    view: str
    partition: int
    key: str
    failing_since: float | None = None
    failures: Counter[str] = field(default_factory=Counter)
    longest_gap: float = 0.0
    seen: dict[str, int] = field(default_factory=dict)
    """The highest version of each aggregate any read of the key has shown."""


@dataclass
class Findings:
    reads: int = 0
    stale_reads: int = 0
    answers_5xx: int = 0
    """Answers with a 5xx from some worker, retried on another."""
    reads_5xx: int = 0
    """Reads that every worker answered with a 5xx: what a client got."""
    regressions: list[str] = field(default_factory=list)
    """Rows presented as fresh that were older than a row read before."""
    unanswered: Counter[str] = field(default_factory=Counter)
    """Tracked keys' reads that were not a 200, by status (599: no worker answered)."""
    gaps: list[dict[str, Any]] = field(default_factory=list)
    """Each time a tracked key went unserved: when (seconds since the run began), for how
    long, and the statuses it got meanwhile."""


def regressions(seen: dict[str, int], versions: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Aggregates whose version in `versions` is below the highest seen: (seen, now)."""
    return {aggregate: (seen[aggregate], version) for aggregate, version in versions.items()
            if version < seen.get(aggregate, 0)}


class Reads:
    """Reads a key of every view in every partition until stopped."""

    def __init__(self, workers: Callable[[], list[Worker]], partitions: int,
                 candidates: Callable[[], dict[str, Iterable[str]]], began: float) -> None:
        self.workers, self.partitions, self.candidates = workers, partitions, candidates
        self.began = began
        self.tracked: dict[tuple[str, int], Tracked] = {}
        self.findings = Findings()
        self.ready: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> "Reads":
        self.http = aiohttp.ClientSession(timeout=READ_TIMEOUT)
        self._tasks = [asyncio.create_task(self._discover()),
                       asyncio.create_task(self._health_checks())]
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.close()
        now = time.monotonic()
        for tracked in self.tracked.values():
            if tracked.failing_since is not None:
                self.close_gap(tracked, now)

    def unserved(self) -> dict[str, float]:
        """Per view and partition, the longest time it went unserved, in seconds."""
        return {f"{t.view}[{t.partition}]": round(t.longest_gap, 1)
                for t in sorted(self.tracked.values(), key=lambda t: (t.view, t.partition))}

    def routable(self) -> list[Worker]:
        running = [w for w in self.workers() if w.alive() and not w.paused]
        return sorted(running, key=lambda w: w.url not in self.ready)

    async def _health_checks(self) -> None:
        while True:
            for worker in self.workers():
                try:
                    async with self.http.get(f"{worker.url}/ready",
                                             timeout=aiohttp.ClientTimeout(total=1.0)) as answer:
                        ok = answer.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                (self.ready.add if ok else self.ready.discard)(worker.url)
            await asyncio.sleep(INTERVAL)

    async def _discover(self) -> None:
        """Track the first key of each view and partition that answers 200."""
        while len(self.tracked) < len(self.candidates()) * self.partitions:
            for view, keys in self.candidates().items():
                for key in keys:
                    slot = (view, owning_partition(key, self.partitions))
                    if slot in self.tracked:
                        continue
                    status, _ = await self.read(view, key)
                    if status == 200:
                        self.tracked[slot] = Tracked(view, slot[1], key)
                        self._tasks.append(asyncio.create_task(self._follow(self.tracked[slot])))
            await asyncio.sleep(INTERVAL)

    async def _follow(self, tracked: Tracked) -> None:
        while True:
            started = time.monotonic()
            status, body = await self.read(tracked.view, tracked.key)
            if status == 200:
                self.check(tracked, body)
                if tracked.failing_since is not None:
                    self.close_gap(tracked, time.monotonic())
            else:
                self.findings.unanswered[str(status)] += 1
                tracked.failures[str(status)] += 1
                if tracked.failing_since is None:
                    tracked.failing_since = started
            await asyncio.sleep(INTERVAL)

    def close_gap(self, tracked: Tracked, now: float) -> None:
        assert tracked.failing_since is not None
        gap = now - tracked.failing_since
        tracked.longest_gap = max(tracked.longest_gap, gap)
        self.findings.gaps.append({
            "partition": f"{tracked.view}[{tracked.partition}]",
            "at": round(tracked.failing_since - self.began, 1), "seconds": round(gap, 1),
            "statuses": dict(tracked.failures)})
        tracked.failing_since = None
        tracked.failures.clear()

    def check(self, tracked: Tracked, body: dict[str, Any]) -> None:
        meta = body["meta"]
        self.findings.stale_reads += bool(meta["stale"])
        versions = meta.get("versions")
        if versions is None:  # a windowed view's rows carry no versions
            return
        behind = regressions(tracked.seen, versions)
        if behind and not meta["stale"]:
            self.findings.regressions.append(
                f"{tracked.view}/{tracked.key} served as fresh by {meta['served_by']} "
                f"(copy {meta.get('copy')}) at versions (seen, served) {behind}")
        for aggregate, version in versions.items():
            tracked.seen[aggregate] = max(version, tracked.seen.get(aggregate, 0))

    async def read(self, view: str, key: str) -> tuple[int, Any]:
        """One client read: the first answer below 500 of the routable workers; else the
        last status (599 when none answered)."""
        self.findings.reads += 1
        status: int = 599
        for worker in self.routable():
            try:
                async with self.http.get(f"{worker.url}/views/{view}/{key}") as answer:
                    status = answer.status
                    if status < 500:
                        return status, await answer.json()
                    self.findings.answers_5xx += 1
            except (aiohttp.ClientError, TimeoutError):
                continue
        if status >= 500 and status != 599:
            self.findings.reads_5xx += 1
        return status, None
