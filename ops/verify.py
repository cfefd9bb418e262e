"""`verify`: fold the whole event log with the views' projectors and compare with the workers;
fold it with the aggregates' evolvers (and the saga's inputs with `react`) and compare with
the states the command handler and the saga stored; and compare the views with the aggregates."""

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from agents.saga_agent import RESERVATIONS
from agents.write_model import STATE_TABLES
from domain.aggregates import AGGREGATES
from domain.saga import Reservation
from ops.progress import Reporter
from ops.write_side import (
    field_differences,
    fold_aggregates,
    fold_saga,
    latest,
    state_differences,
    views_against_aggregates,
)
from streams import topics
from streams.app import settings
from streams.envelopes import Event, parse_event
from streams.kafka_clients import client_options
from tables.fold import fold, listed, version_problems
from tables.listing import MAX_LIMIT
from tables.registry import VIEWS
from tables.view import Data, View
from web.queries import MAX_PAGE


def connection(bootstrap: str) -> dict[str, Any]:
    """A plain client's connection arguments: this process's credentials, to `bootstrap`."""
    return {**client_options(settings), "bootstrap_servers": bootstrap}


async def read_topic(bootstrap: str, topic: str, bar: Reporter | None = None,
                     ) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic, from the start up to its end when we started."""
    partitions = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest",
                                **connection(bootstrap))
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        if bar is not None:
            starts = await consumer.beginning_offsets(partitions)
            bar.set_total((bar.total or 0) + sum(ends[tp] - starts[tp] for tp in partitions))
        found = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                fresh = [r for r in records
                         if r.offset < ends[TopicPartition(r.topic, r.partition)]]
                found += fresh
                if bar is not None:
                    bar.advance(len(fresh))
        return found
    finally:
        await consumer.stop()


async def read_log(bootstrap: str, topic: str,
                   bar: Reporter | None = None) -> tuple[list[Event], int]:
    """The readable events on the topic up to its end at the start, and how many were not."""
    events: list[Event] = []
    unreadable = 0
    for record in await read_topic(bootstrap, topic, bar):
        try:
            events.append(parse_event(record.value))
        except ValidationError:
            unreadable += 1
    return events, unreadable


class MissingTopic(LookupError):
    """The topic does not exist (yet): nothing has been written to it."""


UNKNOWN_TOPIC = 3


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(**connection(bootstrap))
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description["error_code"] == UNKNOWN_TOPIC:
        raise MissingTopic(f"topic {topic} does not exist on {bootstrap}")
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


async def served_list(http: aiohttp.ClientSession, url: str, view: str,
                      wanted: dict[str, str]) -> list[Data]:
    """Every row a list query answers, followed page by page; a partial answer is an error."""
    rows: list[Data] = []
    cursor: dict[str, str] = {}
    while True:
        async with http.get(f"{url}/views/{view}",
                            params={**wanted, **cursor, "limit": str(MAX_LIMIT)}) as response:
            response.raise_for_status()
            answer = await response.json()
        if answer["meta"]["partial"]:
            raise LookupError(f"partitions {answer['meta']['missing_partitions']} did not answer")
        rows += answer["data"]
        if answer["meta"]["next_cursor"] is None:
            return rows
        cursor = {"cursor": answer["meta"]["next_cursor"]}


def _list_difference(served: list[Data], expected: list[Data], key: str) -> str | None:
    if served == expected:
        return None
    have, want = [row[key] for row in served], [row[key] for row in expected]
    if have == want:
        return "the same keys, with different rows"
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    return (f"{len(have)} rows for {len(want)}; missing {missing[:5]}, extra {extra[:5]}"
            if missing or extra else "the right rows, out of key order")


async def list_differences(http: aiohttp.ClientSession, url: str,
                           folded: dict[str, dict[str, Data]]) -> list[str]:
    """Each view's list queries (whole, and by each indexed value) against the fold."""
    found = []
    for name, rows in folded.items():
        key_field = next(iter(VIEWS[name].row.model_fields))
        for wanted, expected in listed(VIEWS[name], rows):
            try:
                served = await served_list(http, url, name, wanted)
            except (aiohttp.ClientError, LookupError) as exc:
                found.append(f"{url} {name} list {wanted}: {exc}")
                continue
            problem = _list_difference(served, expected, key_field)
            if problem:
                found.append(f"{url} {name} list {wanted}: {problem}")
    return found


async def differences(events: list[Event], urls: Iterable[str],
                      unfoldable: list[str] | None = None,
                      bar: Reporter | None = None,
                      views: dict[str, View] | None = None) -> list[str]:
    """What the workers serve that the log does not fold to, with each view's version in
    `views` (by default the resident ones): the live versions, when checking workers."""
    folded = fold(events, unfoldable, views)
    expected = {name: ({key: (None, row["data"]) for key, row in rows.items()}
                       if not VIEWS[name].window else by_window(VIEWS[name], rows))
                for name, rows in folded.items()}
    urls = list(urls)
    if bar is not None:
        bar.set_total(len(urls) * sum(len(rows) for rows in expected.values()))
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
                if bar is not None:
                    bar.advance(len(keys))
                for key, answer in zip(keys, answers, strict=True):
                    found += field_differences(f"{url} {view}/{key}", answer, rows[key][1],
                                               "served", "the log folds to")
            found += await list_differences(http, url, folded)
    return found


async def write_side_differences(bootstrap: str, events: list[Event], unfoldable: list[str],
                                 bar: Reporter | None = None) -> list[str]:
    """The aggregates' and the saga's stored states (read from their tables' changelogs)
    against the fold of their logs, and the views' folds against the aggregates."""
    states = fold_aggregates(events, unfoldable)
    found = []
    for aggregate in AGGREGATES:
        stored = latest(await changelog(bootstrap, STATE_TABLES[aggregate.kind], bar))
        found += state_differences(f"{aggregate.kind}-state", aggregate.state,
                                   states[aggregate.kind], stored)
    inputs = await read_topic(bootstrap, topics.reservation_saga.get_topic_name(), bar)
    expected = fold_saga((record.key, record.value) for record in inputs)
    stored = latest(await changelog(bootstrap, RESERVATIONS, bar))
    found += state_differences("reservation-saga", Reservation, dict(expected), stored)
    return found + views_against_aggregates(fold(events), states)


async def changelog(bootstrap: str, table: Any,
                    bar: Reporter | None = None) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of a table's changelog; none if nothing was ever written to it."""
    try:
        records = await read_topic(bootstrap, table.changelog_topic.get_topic_name(), bar)
    except LookupError:
        return []
    return [(record.key, record.value) for record in records]
