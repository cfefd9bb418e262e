"""`views`: list, rebuild, compare, switch and retire view versions (see docs/evolution.md).

`compare` reads both versions' changelogs one event-log partition at a time, so it holds
the rows of one partition of each version at once, never the whole view.
"""

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.version_repartition import folded_positions
from agents.view_admin import (
    changelog_name,
    event_partitions,
    events_topic,
    positions,
    read_catalog,
    status,
)
from ops.progress import Reporter
from streams.app import settings
from streams.kafka_clients import client_options
from streams.store import is_behind
from tables.compare import level, row_differences
from tables.registry import is_resident
from tables.view import View
from tables.windows import expired, from_faust, split

RECHECKS = 3
RECHECK_PAUSE = 1.0  # doubled each time: Faust sends a resident row's changelog record late

def describe(entries: list[dict[str, Any]]) -> Iterator[str]:
    for entry in entries:
        line = f"{entry['view']} v{entry['version']}  {entry['state']}"
        if entry.get("resident"):
            line += " (resident)"
        if entry["state"] == "former":
            line += "  (folded by nothing: retire it, or rebuild it to use it again)"
        if "partitions" in entry:
            line += "  " + "  ".join(f"[{p['partition']}] {p['folded']}/{p['end']}"
                                     for p in entry["partitions"])
        yield line


async def list_versions() -> list[dict[str, Any]]:
    return await status(await read_catalog())


async def read_rows(topic: str, partition: int) -> dict[str, bytes]:
    """One changelog partition, per key the row that has come furthest."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    rows: dict[str, bytes] = {}
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000,
                                                  max_records=5000)).get(tp, []):
                if record.offset >= end or record.key is None:
                    continue
                key = record.key.decode()
                if record.value is None:
                    rows.pop(key, None)
                elif not is_behind(record.value, rows.get(key)):
                    rows[key] = record.value
    finally:
        await consumer.stop()
    return rows


async def rows_of(view: View, partition: int) -> dict[str, bytes]:
    """One partition of a version's rows by row key: for a windowed view `<key>@<window
    start>` in both kinds of version (`tables.windows`), expired windows left out."""
    rows = await read_rows(changelog_name(view), partition)
    if view.window is None:
        return rows
    now = time.time()
    keyed = {from_faust(key): row for key, row in rows.items()}
    return {key: row for key, row in keyed.items() if not expired(view, split(key)[1], now)}


async def compare(old: View, new: View, say: Callable[[str], None], quiet: bool,
                  wait: float, urls: tuple[str, ...]) -> int:
    """Print every unexpected difference between two versions; how many there were.

    Both versions are compared at one log position per partition: the log's end when the
    comparison starts, which both must have folded before their rows are read. A key whose
    rows have not folded the same events (one version went on folding since) is read again
    once both have folded up to the log's end of that moment, up to RECHECKS times."""
    found = keys = 0
    pair = (old, new)
    ends = await log_ends()
    await _wait_folded(pair, ends, urls, wait, say)
    with Reporter(f"compare {old.table_name} {new.table_name}", len(ends), quiet) as bar:
        for partition in sorted(ends):
            a, b = await rows_of(old, partition), await rows_of(new, partition)
            keys += len(a.keys() | b.keys())
            rows = {key: (_row(a.get(key)), _row(b.get(key))) for key in a.keys() | b.keys()}
            del a, b
            suspects = {key for key, (x, y) in rows.items() if not level(x, y)}
            for key in sorted(rows.keys() - suspects):
                for line in row_differences(key, old, new, *rows.pop(key)):
                    found += 1
                    say(line)
            for attempt in range(RECHECKS):
                if not suspects:
                    break
                await asyncio.sleep(RECHECK_PAUSE * 2 ** attempt)
                rows = await _read_again(pair, partition, suspects, urls, wait, say)
                suspects = {key for key, (x, y) in rows.items() if not level(x, y)}
            for key in sorted(rows):
                for line in row_differences(key, old, new, *rows[key]):
                    found += 1
                    say(line)
            bar.advance()
    expected = f"; new in v{new.version}, expected: {', '.join(sorted(new.new_fields))}"
    say(f"{keys} keys compared, {found} unexpected differences"
        f"{expected if new.new_fields else ''}")
    return found


async def _read_again(pair: tuple[View, View], partition: int, suspects: set[str],
                      urls: tuple[str, ...], wait: float,
                      say: Callable[[str], None]) -> dict[str, tuple[Any, Any]]:
    """The suspects' rows in both versions once both have folded the log as it is now: the
    same event-log partition, or for a view keyed other than by aggregate, whose rows gather
    events from every partition, all of them."""
    sources = [partition] if pair[0].by_aggregate else None
    await _wait_folded(pair, await log_ends(sources), urls, wait, say)
    a, b = await rows_of(pair[0], partition), await rows_of(pair[1], partition)
    return {key: (_row(a.get(key)), _row(b.get(key))) for key in suspects}


async def _wait_folded(pair: tuple[View, View], ends: dict[int, int], urls: tuple[str, ...],
                       wait: float, say: Callable[[str], None]) -> None:
    """Until both versions have folded every partition of `ends` up to its offset there (or
    `wait` seconds have passed, which is said)."""
    deadline = time.monotonic() + wait
    while True:
        short = {view.table_name: [p for p, end in sorted(ends.items()) if found.get(p, 0) < end]
                 for view in pair for found in [await folded(view, urls)]}
        if not any(short.values()):
            return
        if time.monotonic() >= deadline:
            for name, partitions in short.items():
                if partitions:
                    say(f"warning: {name} has not folded partitions {partitions} up to the "
                        f"log's end after {wait:.0f} s; rows it lacks show as differences")
            return
        await asyncio.sleep(0.5)


async def log_ends(partitions: list[int] | None = None) -> dict[int, int]:
    tps = [TopicPartition(events_topic(), p)
           for p in (partitions if partitions is not None else await event_partitions())]
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: end for tp, end in ends.items()}


async def folded(view: View, urls: tuple[str, ...]) -> dict[int, int]:
    """Per event-log partition, the offset before which every record is in the version's
    changelog. A built version commits its offsets after writing its changelog; the
    resident one's committed offsets may stay behind what its agent has applied, or (fed
    through a repartition topic) say only what was forwarded, so the workers are asked too
    (`/cluster`: every worker's applied offsets, and how far each repartition partition's
    rows reach along the event log)."""
    found = {p.partition: p.folded for p in await positions(view)}
    if not is_resident(view):
        return found
    workers = await cluster_workers(urls)
    if view.by_aggregate:
        for partition, offset in applied_offsets(workers, view.name).items():
            found[partition] = max(found.get(partition, 0), offset + 1)
        return found
    reached = {q: {} for q in found} | reached_offsets(workers, view.name)
    return folded_positions(reached, sorted(found))


async def cluster_workers(urls: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every worker's part of `/cluster`, from the first worker asked that answers."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for url in urls:
            try:
                async with http.get(f"{url.rstrip('/')}/cluster?letters=0") as response:
                    if response.status != 200:
                        continue
                    cluster = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            return list(cluster.get("workers", []))
    return []


def applied_offsets(workers: list[dict[str, Any]], name: str) -> dict[int, int]:
    """The last offset each partition's holder says the view's agent has applied."""
    applied: dict[int, int] = {}
    for worker in workers:
        lag = worker.get("projections", {}).get(name, {}).get("partitions", {})
        for partition, behind in lag.items():
            if behind.get("applied") is not None:
                applied[int(partition)] = max(applied.get(int(partition), -1), behind["applied"])
    return applied


def reached_offsets(workers: list[dict[str, Any]], name: str) -> dict[int, dict[int, int]]:
    """Per repartition partition, how far along each event-log partition its rows reach."""
    reached: dict[int, dict[int, int]] = {}
    for worker in workers:
        for partition, sources in worker.get("projections", {}).get(name, {}).get(
                "reached", {}).items():
            known = reached.setdefault(int(partition), {})
            for source, offset in sources.items():
                known[int(source)] = max(known.get(int(source), -1), offset)
    return reached


def _row(raw: bytes | None) -> Any:
    return orjson.loads(raw) if raw is not None else None


async def wait_released(urls: tuple[str, ...], view: View, timeout: float = 30.0) -> None:
    """Until no worker asked still builds the version (so nothing writes its changelog)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        for url in urls:
            while time.monotonic() < deadline:
                try:
                    async with http.get(f"{url.rstrip('/')}/admin/views/local") as response:
                        here = (await response.json()).get("built_here", {})
                except aiohttp.ClientError:
                    break  # a worker that does not answer builds nothing
                if view.table_name not in here:
                    break
                await asyncio.sleep(0.2)


async def measure_switch(urls: tuple[str, ...], view: View, timeout: float = 10.0) -> float:
    """Seconds until every worker asked serves the version; inf if one does not in time."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        for url in urls:
            while True:
                try:
                    async with http.get(f"{url.rstrip('/')}/admin/views/local") as response:
                        live = (await response.json()).get("live_here", {})
                except aiohttp.ClientError:
                    live = {}
                if live.get(view.name) == view.version:
                    break
                if time.monotonic() - started > timeout:
                    return float("inf")
                await asyncio.sleep(0.01)
    return time.monotonic() - started
