"""A version of a windowed view (sales, one row per sku and hour) on the real broker: built
beside v1 through its own repartition topic from a log holding confirmed and cancelled orders
over several hours, under live orders; compared clean, a planted difference named; switched
to, answering range reads and the top ranking as v1 does, rolled back and retired with its
topics."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.partitioning import owning_partition
from tests.integration.cluster import Kafka, Worker, get_json, own_pair
from tests.integration.test_evolution import Readers, local, topic_names, until_ready, views
from tests.integration.test_repartitioned_versions import log_quiet, retired_with_topics

pytestmark = pytest.mark.integration
DECLARED = "tests.integration.repartitioned_v2"
BULK = 600
SKUS = [f"sl-{letter}" for letter in "abcde"]
LIVE_SKU = "sl-live"


@pytest.fixture(scope="module")
async def pair(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[
        tuple[str, list[Worker]]]:
    """Two workers whose code declares sales v2, on a prefix of their own."""
    async with own_pair(kafka, tmp_path_factory.mktemp("sales"), "sales",
                        module=DECLARED) as workers:
        yield workers[0].prefix, workers


def this_hour() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def order_event(prefix: str, order_id: str, version: int, kind: str, at: datetime,
                lines: list[dict[str, Any]]) -> tuple[str, bytes, bytes]:
    command_id = str(uuid4())
    payload: dict[str, Any] = {"customer_id": "sl-cust", "lines": lines}
    if kind == "OrderConfirmed":
        payload["total"] = "1.00"
    else:
        payload["reason"] = "changed my mind"
    event = {"event_id": str(uuid4()), "type": kind, "schema_version": 1,
             "aggregate_id": order_id, "version": version, "command_id": command_id,
             "correlation_id": command_id, "occurred_at": at.isoformat(), "payload": payload}
    return f"{prefix}.events", orjson.dumps(event), order_id.encode()


async def seed(producer: AIOKafkaProducer, prefix: str) -> None:
    """Orders confirmed 4, 3 and 2 hours ago, one in four cancelled an hour after: written to
    the log as earlier code wrote them (the saga has no state for them, so it does nothing)."""
    hour = this_hour()
    for n in range(BULK):
        confirmed = hour - timedelta(hours=4 - n % 3, minutes=-(n % 60))
        lines = [{"sku": SKUS[n % len(SKUS)], "quantity": 1 + n % 3, "unit_price": "2.50"},
                 {"sku": SKUS[(n + 2) % len(SKUS)], "quantity": 1, "unit_price": "4.00"}]
        order_id = f"sl-bulk-{n}"
        await producer.send(*order_event(prefix, order_id, 2, "OrderConfirmed", confirmed, lines))
        if n % 4 == 0:
            await producer.send(*order_event(prefix, order_id, 3, "OrderCancelled",
                                             confirmed + timedelta(hours=1), lines))
    await producer.flush()


async def command(http: aiohttp.ClientSession, worker: Worker, kind: str, aggregate_id: str,
                  payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate_id,
            "payload": payload}
    async with http.post(f"{worker.url}/commands", json=body) as response:
        return response.status, await response.json()


def span(hours_back: int) -> str:
    hour = this_hour()
    return (f"from={(hour - timedelta(hours=hours_back)).isoformat()}"
            f"&to={(hour + timedelta(hours=1)).isoformat()}").replace("+", "%2B")


async def reads(http: aiohttp.ClientSession, workers: list[Worker]) -> dict[str, Any]:
    """Every sku's hours over the last 6 hours, the top ranking, and bad ranges, from both
    workers: each answer's status, data (or error) and meta, by worker and path."""
    paths = [f"/views/sales/{sku}?{span(5)}" for sku in [*SKUS, LIVE_SKU, "sl-none"]]
    paths += [f"/views/sales/top?{span(5)}&n=4", f"/views/sales/top?{span(5)}",
              "/views/sales/sl-a?from=yesterday", "/views/sales/top?n=0"]
    found = {}
    for worker in workers:
        for path in paths:
            status, body = await get_json(http, f"{worker.url}{path}")
            found[f"{worker.name} {path}"] = (status, body.get("data", body), body.get("meta"))
    return found


def hours(body: dict[str, Any]) -> int:
    """How many hours a range read answers (the last 24 by default): never fewer for a
    reader once traffic has stopped."""
    return len(body["data"]["windows"])


def answers(found: dict[str, Any]) -> dict[str, Any]:
    """Each answer's status, data and the fields its meta has (whatever their values)."""
    return {path: (status, data, sorted(meta or ())) for path, (status, data, meta)
            in found.items()}


def served_versions(found: dict[str, Any]) -> set[int]:
    """The versions that answered the range reads and the rankings."""
    versions = set()
    for _, _, meta in found.values():
        versions |= {meta["view_version"]} if "view_version" in (meta or {}) else set()
        versions |= set((meta or {}).get("view_versions", ()))
    return versions


async def plant_difference(kafka: Kafka, prefix: str, sku: str, partitions: int) -> str:
    """Write the row of the sku's first hour into v2's changelog again, as a projector
    folding one of its events wrongly would have (the same events, other units); its key."""
    topic = f"{prefix}.view-sales-v2-changelog"
    tp = TopicPartition(topic, owning_partition(sku, partitions))
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    rows: dict[str, Any] = {}
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.key and record.key.decode().startswith(f"{sku}@"):
                    rows[record.key.decode()] = orjson.loads(record.value)
    finally:
        await consumer.stop()
    key = min(rows)
    row = rows[key]
    planted = {**row, "data": {**row["data"], "units": row["data"]["units"] + 1000}}
    client = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await client.start()
    try:
        await client.send_and_wait(topic, orjson.dumps(planted), key.encode(),
                                   partition=tp.partition)
    finally:
        await client.stop()
    return key


async def test_sales_v2_is_built_per_sku_and_hour_compared_switched_and_retired(
    kafka: Kafka, pair: tuple[str, list[Worker]], producer: AIOKafkaProducer,
    http: aiohttp.ClientSession,
) -> None:
    prefix, workers = pair
    status, _ = await command(http, workers[0], "RegisterProduct", LIVE_SKU,
                              {"name": "Live", "price": "3.00", "stock": 100000})
    assert status == 200
    await seed(producer, prefix)

    traffic_stop = asyncio.Event()
    tokens: dict[str, str] = {}

    async def live_traffic() -> int:
        """Orders of the live sku on both workers all along, every third one cancelled, and
        at least six of them: a build can be ready before the second order is answered."""
        sent = 0
        while not traffic_stop.is_set() or sent < 6:
            order_id = f"sl-live-{sent}"
            status, answer = await command(http, workers[sent % 2], "PlaceOrder", order_id,
                                           {"customer_id": "sl-live-cust",
                                            "lines": [{"sku": LIVE_SKU, "quantity": 1}]})
            assert status in (200, 202), answer
            if "token" in answer:
                tokens.update({sku: answer["token"] for sku in (LIVE_SKU, *SKUS)})
            if sent % 3 == 2:
                await command(http, workers[0], "CancelOrder", order_id, {})
            sent += 1
        return sent

    traffic = asyncio.create_task(live_traffic())
    code, output = await views(kafka, prefix, workers[0], "rebuild", "sales", "--version", "2",
                               module=DECLARED)
    assert code == 0, output
    assert "building" in output, output
    assert f"{prefix}.view-sales-v2-repartition" in await topic_names(kafka)

    await until_ready(http, workers[0], "sales", 2, timeout=300)
    assert traffic.done() is False  # v2 caught up while commands kept coming
    traffic_stop.set()
    assert await traffic > 0
    # The saga confirms the last orders after their commands: compare once the log is still.
    await log_quiet(kafka, f"{prefix}.events", workers[0].partitions)

    urls = tuple(worker.url for worker in workers)
    code, output = await views(kafka, prefix, workers[0], "compare", "sales", "1", "2",
                               "--wait", "300", urls=urls, module=DECLARED)
    assert code == 0, output
    assert " 0 unexpected differences" in output, output
    assert int(output.split(" keys compared")[0].split()[-1]) >= 4 * len(SKUS), output

    before = await reads(http, workers)
    assert served_versions(before) == {1}
    for worker in workers:
        status, data, _ = before[f"{worker.name} /views/sales/sl-a?{span(5)}"]
        assert status == 200 and len(data["windows"]) >= 3, data  # the seeded hours
        status, data, _ = before[f"{worker.name} /views/sales/{LIVE_SKU}?{span(5)}"]
        assert status == 200 and data["windows"], data  # the live orders' hour
        status, data, _ = before[f"{worker.name} /views/sales/top?{span(5)}&n=4"]
        assert status == 200 and len(data) == 4, data

    readers = Readers(http, workers, tokens, "sales", hours)
    code, output = await readers.run_while(
        views(kafka, prefix, workers[0], "switch", "sales", "2", urls=urls, module=DECLARED))
    assert code == 0, output
    assert "served by 2 worker(s) asked within" in output, output
    assert not [s for s in readers.statuses if s >= 500], readers.statuses
    assert readers.backwards == []
    for worker in workers:
        assert (await local(http, worker))["live_here"]["sales"] == 2

    after = await reads(http, workers)
    assert served_versions(after) == {2}
    assert answers(after) == answers(before)  # row for row, the ranking, the errors, the shape
    # v2 serves every sku's hours as folding the whole log gives them. (verify also reports
    # the seeded orders, written to the log directly, as the command handler lacking them.)
    _, output = await views(kafka, prefix, workers[0], urls=urls, module=DECLARED,
                            command="verify")
    assert " events (0 unreadable" in output, output[-3000:]
    served_wrong = [line for line in output.splitlines() if " sales/" in line]
    assert served_wrong == [], served_wrong[:20]

    key = await plant_difference(kafka, prefix, "sl-a", workers[0].partitions)
    code, output = await views(kafka, prefix, workers[0], "compare", "sales", "1", "2",
                               "--wait", "300", urls=urls, module=DECLARED)
    assert code == 1, output
    assert f"{key}: " in output and " 1 unexpected differences" in output, output

    code, output = await views(kafka, prefix, workers[0], "retire", "sales", "2", urls=urls,
                               module=DECLARED)
    assert code == 2 and "is live" in output, output

    code, output = await views(kafka, prefix, workers[0], "switch", "sales", "1", urls=urls,
                               module=DECLARED)
    assert code == 0, output
    rolled_back = await reads(http, workers)
    assert served_versions(rolled_back) == {1}
    assert answers(rolled_back) == answers(before)

    await retired_with_topics(kafka, prefix, workers, http, "sales")
