"""`verify`: fold the whole event log with the views' projectors and compare with the workers."""

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from streams.envelopes import Event, parse_event
from tables.fold import fold, version_problems
from tables.registry import VIEWS
from tables.view import Data, View
from web.queries import MAX_PAGE


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic, from the start up to its end when we started."""
    partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                found += [r for r in records
                          if r.offset < ends[TopicPartition(r.topic, r.partition)]]
        return found
    finally:
        await consumer.stop()


async def read_log(bootstrap: str, topic: str) -> tuple[list[Event], int]:
    """The readable events on the topic up to its end at the start, and how many were not."""
    events: list[Event] = []
    unreadable = 0
    for record in await read_topic(bootstrap, topic):
        try:
            events.append(parse_event(record.value))
        except ValidationError:
            unreadable += 1
    return events, unreadable


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description["error_code"] != 0 or not description["partitions"]:
        raise LookupError(f"cannot read topic {topic}: error {description['error_code']}")
    return sorted(p["partition"] for p in description["partitions"])


async def served(http: aiohttp.ClientSession, url: str, view: str, key: str,
                 query: dict[str, str] | None = None) -> Any:
    """What the worker serves for the key; a paged list is fetched page by page, whole."""
    paged = VIEWS[view].paged
    data: Any = None
    while True:
        offset = len(data[paged]) if data is not None and paged else 0
        params = query or {"limit": str(MAX_PAGE), "offset": str(offset)}
        async with http.get(f"{url}/views/{view}/{quote(key, safe='')}",
                            params=params) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            answer = await response.json()
        if data is None:
            data = answer["data"]
        else:
            data[paged] += answer["data"][paged]
        if not paged or len(data[paged]) >= answer["meta"]["total"]:
            return data


def by_window(view: View, rows: dict[str, Data]) -> dict[str, tuple[dict[str, str], Data]]:
    """A windowed view's folded rows as what one range query per key should answer."""
    assert view.window is not None
    windows: dict[str, list[Data]] = {}
    for slot in sorted(rows):
        key, _, _ = slot.rpartition("@")
        windows.setdefault(key, []).append(rows[slot]["data"])
    answers = {}
    for key, found in windows.items():
        last = datetime.fromisoformat(found[-1]["hour"]) + timedelta(seconds=view.window)
        query = {"from": found[0]["hour"], "to": last.isoformat()}
        answers[key] = (query, {"key": key, "windows": found})
    return answers


async def differences(events: list[Event], urls: Iterable[str],
                      unfoldable: list[str] | None = None,
                      views: dict[str, View] | None = None) -> list[str]:
    """What the workers serve that the log does not fold to, with each view's version in
    `views` (by default the resident ones): the live versions, when checking workers."""
    expected = {name: ({key: (None, row["data"]) for key, row in rows.items()}
                       if not VIEWS[name].window else by_window(VIEWS[name], rows))
                for name, rows in fold(events, unfoldable, views).items()}
    found = version_problems(events)
    async with aiohttp.ClientSession() as http:
        for url in urls:
            for view, rows in expected.items():
                keys = sorted(rows)
                try:
                    answers = await asyncio.gather(
                        *(served(http, url, view, k, rows[k][0]) for k in keys))
                except aiohttp.ClientError as exc:
                    found.append(f"{url} {view}: {exc}")
                    continue
                for key, answer in zip(keys, answers, strict=True):
                    if answer != rows[key][1]:
                        found.append(f"{url} {view}/{key}: served {answer}, "
                                     f"the log folds to {rows[key][1]}")
    return found
