"""GET /lag and GET /metrics on real workers: lag drains to zero, each worker reports its own."""

import asyncio
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.partitioning import owning_partition
from tests.integration.cluster import Results, Worker
from tests.integration.conftest import PARTITIONS
from tests.integration.shop import Shop

pytestmark = pytest.mark.integration

POLL = 0.2
DRAIN_TIMEOUT = 60.0
ALL = {str(p) for p in range(PARTITIONS)}


async def post(http: aiohttp.ClientSession, worker: Worker, kind: str, aggregate_id: str,
               payload: dict[str, Any], command_id: str | None = None) -> tuple[int, Any]:
    body = {"command_id": command_id or str(uuid4()), "type": kind,
            "aggregate_id": aggregate_id, "payload": payload}
    async with http.post(f"{worker.url}/commands", json=body) as response:
        return response.status, await response.json()


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def covering(make_key: Callable[[], str]) -> list[str]:
    """One key per partition, so every partition of the log and the results gets a record."""
    found: dict[int, str] = {}
    while len(found) < PARTITIONS:
        key = make_key()
        found.setdefault(owning_partition(key, PARTITIONS), key)
    return list(found.values())


async def post_orders(http: aiohttp.ClientSession, workers: list[Worker]) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    status, answer = await post(http, workers[0], "RegisterProduct", sku,
                                {"name": "Lag", "price": "1.00", "stock": 100})
    assert status == 200, answer
    order_ids = covering(lambda: f"order-{uuid4().hex[:10]}")
    command_ids = covering(lambda: str(uuid4()))
    for n, (order_id, command_id) in enumerate(zip(order_ids, command_ids, strict=True)):
        status, answer = await post(http, workers[n % 2], "PlaceOrder", order_id, {
            "customer_id": f"cust-{n}", "lines": [{"sku": sku, "quantity": 1}]}, command_id)
        assert status == 200, answer


def drained(reports: list[dict[str, Any]]) -> bool:
    """Every partition of every projection on every worker is caught up, and together the
    workers cover every partition."""
    for name in reports[0]["projections"]:
        if set().union(*(r["projections"][name] for r in reports)) != ALL:
            return False
    return all(lag["records"] == 0 for report in reports
               for partitions in report["projections"].values() for lag in partitions.values())


async def wait_until_drained(http: aiohttp.ClientSession,
                             workers: list[Worker]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        reports = [await get(http, f"{worker.url}/lag") for worker in workers]
        if drained(reports) or time.monotonic() > deadline:
            return reports
        await asyncio.sleep(POLL)


async def test_lag_drains_to_zero_and_each_worker_reports_only_its_own_partitions(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    await post_orders(http, workers)
    reports = await wait_until_drained(http, workers)
    assert drained(reports), reports
    assert [r["worker"] for r in reports] == [w.url for w in workers]
    for name in reports[0]["projections"]:
        mine, theirs = (set(r["projections"][name]) for r in reports)
        assert not mine & theirs, (name, reports)
    for report in reports:
        for partitions in report["projections"].values():
            assert all(lag["seconds"] in (0.0, None) for lag in partitions.values())
    assert set(reports[0]["projections"]) == {"orders", "products", "customer-orders", "sales",
                                              "command-results"}
    orders = [r["latency_ms"]["orders"] for r in reports]
    assert all(s["p50"] is not None for s in orders if s["count"])


async def test_the_applied_latency_counts_every_record_not_one_per_batch(
    workers: list[Worker], http: aiohttp.ClientSession, producer: AIOKafkaProducer,
    prefix: str, results: Results,
) -> None:
    """100 orders placed at once are folded in a few batches; each of their events is a
    sample of the orders view's latency."""
    await wait_until_drained(http, workers)
    before = await applied_count(http, workers, "orders")
    shop = Shop(producer, prefix, results, seed=606)
    placed = [await shop.send("PlaceOrder", f"order-{uuid4().hex[:10]}", {
        "customer_id": "c", "lines": [{"sku": f"missing-{uuid4().hex[:6]}", "quantity": 1}]})
        for _ in range(100)]
    await shop.settle(placed)
    assert drained(await wait_until_drained(http, workers))
    # each order: OrderPlaced, then OrderRejected once the saga finds no such product
    orders = {shop.sent[command_id]["aggregate_id"] for command_id in placed}
    await results.wait_until(lambda: orders <= {
        r["aggregate_id"] for answers in results.by_command.values() for r in answers
        if r["type"] == "RejectOrder" and r["status"] == "accepted"}, 120)
    assert drained(await wait_until_drained(http, workers))
    assert await applied_count(http, workers, "orders") - before >= 200


async def applied_count(http: aiohttp.ClientSession, workers: list[Worker], view: str) -> int:
    return sum([(await get(http, f"{w.url}/lag"))["latency_ms"][view]["count"] for w in workers])


async def test_metrics_in_prometheus_text(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    for worker in workers:
        lag = await get(http, f"{worker.url}/lag")
        async with http.get(f"{worker.url}/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()
        samples = {(sample.name, tuple(sorted(sample.labels.items())))
                   for family in text_string_to_metric_families(text) for sample in family.samples}
        names = {name for name, _ in samples}
        assert {"shopstream_view_applied_latency_seconds_count", "shopstream_stale_reads_total",
                "shopstream_read_wait_seconds_count", "shopstream_commands_submitted_total",
                "faust_events_per_second", "faust_events_total", "faust_messages_received_total",
                "faust_messages_sent_total", "faust_rebalances_total",
                "faust_topic_messages_received_total",
                "shopstream_event_loop_lag_seconds_count"} <= names
        for name, partitions in lag["projections"].items():
            for partition in partitions:
                labels = (("partition", partition), ("projection", name))
                assert ("shopstream_projection_lag_records", labels) in samples
        timed = [sample.value for family in text_string_to_metric_families(text)
                 for sample in family.samples
                 if sample.name == "shopstream_event_loop_lag_seconds_count"]
        assert timed and timed[0] > 0  # the loop's timer runs on every worker
