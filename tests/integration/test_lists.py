"""List queries over HTTP on two workers: the fan-out equals the fold of the log, a missing
owner makes the answer partial, and a token makes every partition wait for it."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4

import aiohttp
import pytest

from ops.verify import read_log
from streams.partitioning import owning_partition
from streams.tokens import Token
from tables.fold import fold
from tables.listing import totals
from tables.sales import VIEW as SALES
from tests.integration.cluster import Kafka, Worker, get_json, own_pair
from tests.integration.conftest import PARTITIONS

pytestmark = pytest.mark.integration
SETTLED = 120.0


async def post(http: aiohttp.ClientSession, worker: Worker, kind: str, aggregate_id: str,
               payload: dict[str, Any]) -> dict[str, Any]:
    command = {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate_id,
               "payload": payload}
    async with http.post(f"{worker.url}/commands?timeout=30", json=command) as response:
        body: dict[str, Any] = await response.json()
        assert response.status in (200, 409), body
        return body


async def shop(http: aiohttp.ClientSession, worker: Worker, customer: str,
               orders: int) -> list[str]:
    """Two products, and `orders` orders of one customer: the later ones run out of stock."""
    skus = [f"sku-{uuid4().hex[:8]}" for _ in range(2)]
    for sku in skus:
        await post(http, worker, "RegisterProduct", sku, {"name": "Mug", "price": "4.25",
                                                          "stock": orders // 2})
    ids = [f"order-{uuid4().hex[:10]}" for _ in range(orders)]
    await asyncio.gather(*(post(http, worker, "PlaceOrder", order, {
        "customer_id": customer, "lines": [{"sku": skus[n % 2], "quantity": 1 + n % 2}]})
        for n, order in enumerate(ids)))
    return ids


async def pages(http: aiohttp.ClientSession, url: str, view: str,
                params: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every row of a list query, followed cursor by cursor; and each page's meta."""
    rows: list[dict[str, Any]] = []
    metas: list[dict[str, Any]] = []
    cursor: dict[str, str] = {}
    while True:
        status, answer = await get_json(http, f"{url}/views/{view}?{urlencode(params | cursor)}")
        assert status == 200, answer
        rows += answer["data"]
        metas.append(answer["meta"])
        if answer["meta"]["next_cursor"] is None:
            return rows, metas
        cursor = {"cursor": answer["meta"]["next_cursor"]}


async def until(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.5)


async def folded_orders(kafka: Kafka, prefix: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The orders view as the fold of the log, once each of `ids` has left `placed`."""
    found: dict[str, dict[str, Any]] = {}

    async def settled() -> bool:
        events, _ = await read_log(kafka.bootstrap, f"{prefix}.events")
        rows = fold(events)["orders"]
        found.clear()
        found.update({key: row["data"] for key, row in rows.items()})
        return all(key in found and found[key]["status"] != "placed" for key in ids)

    await until(settled, SETTLED)
    return found


async def test_a_list_across_both_workers_equals_the_fold(
    workers: list[Worker], kafka: Kafka, prefix: str, http: aiohttp.ClientSession,
) -> None:
    customer = f"cust-{uuid4().hex[:8]}"
    ids = await shop(http, workers[0], customer, 24)
    folded = await folded_orders(kafka, prefix, ids)
    mine = sorted((row for row in folded.values() if row["customer_id"] == customer),
                  key=lambda row: row["order_id"])
    assert {row["status"] for row in mine} == {"confirmed", "rejected"}
    for worker in workers:
        for status in ("confirmed", "rejected", "paid"):
            expected = [row for row in mine if row["status"] == status]

            async def matches(worker: Worker = worker, status: str = status,
                              expected: list[dict[str, Any]] = expected) -> bool:
                rows, _ = await pages(http, worker.url, "orders",
                                      {"status": status, "customer_id": customer, "limit": "5"})
                return rows == expected

            await until(matches, SETTLED)
        rows, metas = await pages(http, worker.url, "orders",
                                  {"customer_id": customer, "limit": "7"})
        assert rows == mine
        whole, rest = divmod(len(mine), 7)
        assert [meta["count"] for meta in metas] == [7] * whole + ([rest] if rest else [])
        assert not any(meta["partial"] or meta["missing_partitions"] for meta in metas)
        assert set(metas[-1]["positions"]) <= {str(p) for p in range(PARTITIONS)}


async def test_products_low_on_stock(workers: list[Worker], http: aiohttp.ClientSession) -> None:
    skus = sorted(f"sku-{uuid4().hex[:8]}" for _ in range(4))
    for n, sku in enumerate(skus):
        await post(http, workers[0], "RegisterProduct", sku,
                   {"name": "Pen", "price": "1.00", "stock": n * 3})
    rows, _ = await pages(http, workers[1].url, "products", {"available_below": "5"})
    low = [row["sku"] for row in rows if row["sku"] in skus]
    assert low == skus[:2]
    assert all(row["available"] < 5 for row in rows)


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/views/orders?status=lost", 400, "status must be one of"),
    ("/views/orders?limit=0", 400, "limit must be between"),
    ("/views/orders?cursor=bm9wZQ", 400, "cursor is not one this service issued"),
    ("/views/orders?colour=red", 400, "unknown parameter 'colour'"),
    ("/views/orders?status=paid&status=shipped", 400, "give each parameter once"),
    ("/views/orders?token=forged", 400, "token"),
    ("/views/orders?timeout=-1", 400, "timeout"),
    ("/views/products?available_below=few", 400, "available_below must be an integer"),
    ("/views/sales", 404, "sales has no list query"),
    ("/views/nothing", 404, "no view named 'nothing'"),
])
async def test_bad_parameters_get_a_json_error(
    workers: list[Worker], http: aiohttp.ClientSession, path: str, status: int, message: str,
) -> None:
    got, body = await get_json(http, f"{workers[0].url}{path}")
    assert got == status and message in body["error"], body


async def test_a_token_makes_every_partition_wait_for_it(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    customer = f"cust-{uuid4().hex[:8]}"
    sku = f"sku-{uuid4().hex[:8]}"
    await post(http, workers[0], "RegisterProduct", sku, {"name": "Cup", "price": "2.00",
                                                          "stock": 100})
    for n in range(10):
        order = f"order-{uuid4().hex[:10]}"
        placed = await post(http, workers[n % 2], "PlaceOrder", order, {
            "customer_id": customer, "lines": [{"sku": sku, "quantity": 1}]})
        status, answer = await get_json(
            http, f"{workers[(n + 1) % 2].url}/views/orders?customer_id={customer}"
                  f"&token={placed['token']}")
        assert status == 200 and answer["meta"]["stale"] is False, answer
        assert order in {row["order_id"] for row in answer["data"]}
    partition = owning_partition(order, PARTITIONS)
    beyond = Token(((partition, 10**9),), order, 10**6).encode()
    status, answer = await get_json(
        http, f"{workers[0].url}/views/orders?customer_id={customer}&token={beyond}&timeout=0.5")
    assert status == 200 and answer["meta"]["stale"] is True
    assert list(answer["meta"]["behind"]) == [f"events[{partition}]"]


@pytest.fixture
async def pair(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory,
               ) -> AsyncIterator[list[Worker]]:
    """Two workers of this test's own: one of them is paused, which the session's must not be."""
    async with own_pair(kafka, tmp_path_factory.mktemp("lists-pair"), "lists",
                        partitions=PARTITIONS) as started:
        yield started


async def test_an_owner_that_does_not_answer_makes_the_list_partial(
    pair: list[Worker], http: aiohttp.ClientSession,
) -> None:
    customer = f"cust-{uuid4().hex[:8]}"

    async def spread() -> bool:
        lag = [(await get_json(http, f"{worker.url}/lag"))[1] for worker in pair]
        return all(report["projections"].get("orders") for report in lag)

    await until(spread, SETTLED)  # each worker holds some partitions
    ids = await shop(http, pair[0], customer, 16)
    params = {"customer_id": customer, "limit": "500"}

    async def complete() -> bool:
        rows, _ = await pages(http, pair[0].url, "orders", params)
        return sorted(row["order_id"] for row in rows) == sorted(ids)

    await until(complete, SETTLED)
    pair[1].pause()
    try:
        status, answer = await get_json(http, f"{pair[0].url}/views/orders?{urlencode(params)}")
    finally:
        pair[1].resume()
    assert status == 200, answer
    missing = answer["meta"]["missing_partitions"]
    assert answer["meta"]["partial"] is True and 0 < len(missing) < PARTITIONS
    assert sorted(row["order_id"] for row in answer["data"]) == sorted(
        order for order in ids if owning_partition(order, PARTITIONS) not in missing)
    await until(complete, SETTLED)


async def test_top_sellers_across_both_workers_equal_the_fold(
    workers: list[Worker], kafka: Kafka, prefix: str, http: aiohttp.ClientSession,
) -> None:
    customer = f"cust-{uuid4().hex[:8]}"
    ids = await shop(http, workers[1], customer, 12)
    await folded_orders(kafka, prefix, ids)
    now = datetime.now(UTC)
    begin, end = now - timedelta(hours=3), now + timedelta(hours=1)
    params = urlencode({"from": begin.isoformat(), "to": end.isoformat(), "n": "100"})

    async def expected() -> list[dict[str, Any]]:
        events, _ = await read_log(kafka.bootstrap, f"{prefix}.events")
        first = begin.timestamp() - begin.timestamp() % 3600
        hours = [row["data"] for row in fold(events)["sales"].values()
                 if first <= datetime.fromisoformat(row["data"]["hour"]).timestamp()
                 < end.timestamp()]
        assert SALES.ranking is not None
        return totals(hours, SALES.ranking)[:100]

    for worker in workers:
        async def agrees(worker: Worker = worker) -> bool:
            status, answer = await get_json(http, f"{worker.url}/views/sales/top?{params}")
            assert status == 200 and answer["meta"]["partial"] is False, answer
            return bool(answer["data"]) and answer["data"] == await expected()

        await until(agrees, SETTLED)
    status, answer = await get_json(http, f"{workers[0].url}/views/sales/top?{params}")
    units = [row["units"] for row in answer["data"]]
    assert units == sorted(units, reverse=True)
    for bad in ("n=0", "n=many", "from=yesterday", "colour=red"):
        status, body = await get_json(http, f"{workers[0].url}/views/sales/top?{bad}")
        assert status == 400 and "error" in body, body
