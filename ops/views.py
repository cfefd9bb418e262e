"""`views`: list, rebuild, compare, switch and retire view versions (see docs/evolution.md).

`compare` reads both versions' changelogs one event-log partition at a time, so it holds
the rows of one partition of each version at once, never the whole view.
"""

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.view_admin import (
    changelog_name,
    event_partitions,
    read_catalog,
    status,
    wait_caught_up,
)
from ops.progress import Reporter
from streams.app import settings
from streams.kafka_clients import client_options
from streams.store import is_behind
from tables.compare import row_differences
from tables.registry import is_resident
from tables.view import View


def describe(entries: list[dict[str, Any]]) -> Iterator[str]:
    for entry in entries:
        line = f"{entry['view']} v{entry['version']}  {entry['state']}"
        if entry.get("resident"):
            line += " (resident)"
        if "partitions" in entry:
            line += "  " + "  ".join(f"[{p['partition']}] {p['folded']}/{p['end']}"
                                     for p in entry["partitions"])
        yield line


async def list_versions() -> list[dict[str, Any]]:
    return await status(await read_catalog())


async def read_rows(topic: str, partition: int) -> dict[str, bytes]:
    """One changelog partition, per key the row that has come furthest."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
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


async def compare(old: View, new: View, say: Callable[[str], None], quiet: bool,
                  wait: float) -> int:
    """Print every unexpected difference between two versions; how many there were."""
    since = datetime.now(UTC)
    for view in (old, new):
        if is_resident(view):
            continue  # it never stops folding; its committed offsets may lag what it applied
        short = await wait_caught_up(view, wait)
        if short:
            say(f"warning: {view.table_name} is still behind on partitions "
                f"{[p.partition for p in short]}; rows it lacks show as differences")
    found = keys = 0
    partitions = await event_partitions()
    with Reporter(f"compare {old.table_name} {new.table_name}", len(partitions),
                  quiet) as bar:
        for partition in partitions:
            a = await read_rows(changelog_name(old), partition)
            b = await read_rows(changelog_name(new), partition)
            for key in sorted(a.keys() | b.keys()):
                keys += 1
                for line in row_differences(key, old, new, _row(a.get(key)), _row(b.get(key)),
                                            since):
                    found += 1
                    say(line)
            bar.advance()
    expected = f"; new in v{new.version}, expected: {', '.join(sorted(new.new_fields))}"
    say(f"{keys} keys compared, {found} unexpected differences"
        f"{expected if new.new_fields else ''}")
    return found


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
