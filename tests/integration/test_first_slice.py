"""A command from a plain Kafka client travels to the orders view, readable from both workers."""

import asyncio
import time
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from ops.verify import read_log
from tests.integration.cluster import Kafka, Results, Worker, get_json

pytestmark = pytest.mark.integration


def place_order(order_id: str, customer_id: str = "cust-1") -> dict[str, Any]:
    return {
        "command_id": str(uuid4()),
        "type": "PlaceOrder",
        "aggregate_id": order_id,
        "payload": {"customer_id": customer_id, "lines": [{"sku": "sku-1", "quantity": 2}]},
    }



async def wait_for_row(http: aiohttp.ClientSession, worker: Worker, view: str, key: str,
                       timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await get_json(http, f"{worker.url}/views/{view}/{key}")
        if status == 200:
            return body
        assert status in (404, 503), body
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{view}/{key} did not appear on {worker.name}\n{worker.log_tail()}")


async def test_a_produced_command_is_readable_from_both_workers(
    workers: list[Worker], producer: AIOKafkaProducer, prefix: str,
    http: aiohttp.ClientSession,
) -> None:
    order_id = f"order-{uuid4().hex[:8]}"
    await producer.send_and_wait(f"{prefix}.commands", orjson.dumps(place_order(order_id)),
                                 key=order_id.encode())
    # sku-1 was never registered: the saga rejects the order, its version 2.
    first = await wait_for_row(http, workers[0], "orders", f"{order_id}?min_version=2")
    second = await wait_for_row(http, workers[1], "orders", f"{order_id}?min_version=2")
    assert first["data"] == second["data"]
    assert first["meta"]["served_by"] == second["meta"]["served_by"]
    assert first["meta"]["served_by"] in {w.url for w in workers}
    assert (first["data"]["status"], first["meta"]["version"]) == ("rejected", 2)
    assert first["data"]["lines"] == [{"sku": "sku-1", "quantity": 2}]
    assert "sku-1" in first["data"]["reason"]


async def test_keys_are_served_by_their_owner_and_forwarded_by_the_other(
    workers: list[Worker], producer: AIOKafkaProducer, prefix: str,
    http: aiohttp.ClientSession,
) -> None:
    order_ids = [f"order-{uuid4().hex[:8]}" for _ in range(12)]
    for order_id in order_ids:
        await producer.send_and_wait(f"{prefix}.commands", orjson.dumps(place_order(order_id)),
                                     key=order_id.encode())
    owners = set()
    for order_id in order_ids:
        for worker in workers:
            body = await wait_for_row(http, worker, "orders", order_id)
            owners.add(body["meta"]["served_by"])
    assert owners == {w.url for w in workers}


async def test_a_command_on_a_partition_that_does_not_own_it_is_moved_to_its_owner(
    workers: list[Worker], producer: AIOKafkaProducer, prefix: str, results: Results,
) -> None:
    """A non-murmur2 producer (kcat's default) must not split an aggregate's state."""
    topic = f"{prefix}.commands"
    order_id = f"order-{uuid4().hex[:8]}"
    partitions = sorted(await producer.partitions_for(topic))
    owner = DefaultPartitioner()(order_id.encode(), partitions, partitions)
    first, again = place_order(order_id), place_order(order_id)
    await producer.send_and_wait(topic, orjson.dumps(first), key=order_id.encode(),
                                 partition=(owner + 1) % len(partitions))
    assert (await results.wait_for(first["command_id"]))["status"] == "accepted"
    await producer.send_and_wait(topic, orjson.dumps(again), key=order_id.encode(),
                                 partition=owner)
    second = await results.wait_for(again["command_id"])
    assert (second["status"], second["reason"]) == ("rejected", "order already exists")


async def test_post_command_is_accepted_and_reaches_the_view(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    order_id = f"order-{uuid4().hex[:8]}"
    command = place_order(order_id, customer_id="cust-http")
    async with http.post(f"{workers[1].url}/commands?wait=false", json=command) as response:
        assert response.status == 202
        assert await response.json() == {"command_id": command["command_id"],
                                         "status": "submitted"}
    body = await wait_for_row(http, workers[0], "orders", order_id)
    assert body["data"]["customer_id"] == "cust-http"


async def test_an_invalid_command_over_http_is_a_422_naming_the_field(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    command = place_order("order-bad")
    command["payload"]["lines"][0]["quantity"] = -1
    async with http.post(f"{workers[0].url}/commands", json=command) as response:
        assert response.status == 422
        body = await response.json()
    assert [d["field"] for d in body["details"]] == ["payload.lines.0.quantity"]


@pytest.mark.parametrize("body, content_type, status", [
    (b"{not json", "application/json", 400),
    (b"\xff\xfe\x00", "application/json", 400),
    (b"{}", "text/plain", 415),
    (b"x" * (65 * 1024), "application/json", 413),
])
async def test_bad_http_bodies_get_a_json_4xx(
    workers: list[Worker], http: aiohttp.ClientSession,
    body: bytes, content_type: str, status: int,
) -> None:
    async with http.post(f"{workers[0].url}/commands", data=body,
                         headers={"Content-Type": content_type}) as response:
        assert response.status == status
        assert "error" in await response.json()


async def test_unknown_views_and_keys_are_json_404s(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    status, body = await get_json(http, f"{workers[0].url}/views/nope/x")
    assert (status, body["views"]) == (404, ["customer-orders", "orders", "products", "sales"])
    for worker in workers:
        status, body = await get_json(http, f"{worker.url}/views/orders/no-such-order")
        assert status == 404 and "error" in body


async def test_a_repeated_command_id_is_applied_once_and_gets_the_first_result_back(
    kafka: Kafka, workers: list[Worker], producer: AIOKafkaProducer, prefix: str,
    results: Results,
) -> None:
    order_id = f"order-{uuid4().hex[:8]}"
    command = place_order(order_id)
    for _ in range(3):
        await producer.send_and_wait(f"{prefix}.commands", orjson.dumps(command),
                                     key=order_id.encode())
    first = await results.wait_for(command["command_id"], count=3)
    assert results.by_command[command["command_id"]] == [first] * 3
    assert first["status"] == "accepted" and first["version"] == 1
    log, _ = await read_log(kafka.bootstrap, f"{prefix}.events")
    placed = [event for event in log if event.aggregate_id == order_id
              and event.type == "OrderPlaced"]
    assert [event.version for event in placed] == [1]


async def test_customer_orders_are_paged_newest_first_and_bad_queries_are_400s(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    customer = f"cust-{uuid4().hex[:8]}"
    order_ids = [f"order-{uuid4().hex[:8]}" for _ in range(3)]
    for order_id in order_ids:
        command = place_order(order_id, customer_id=customer)
        async with http.post(f"{workers[0].url}/commands", json=command) as response:
            assert response.status == 200
            token = (await response.json())["token"]
        # Rows never go back, so after reading with each order's token all three are in.
        body = await wait_for_row(http, workers[1], "customer-orders",
                                  f"{customer}?limit=2&token={token}")
        assert not body["meta"]["stale"]
    assert body["meta"] | {"limit": 2, "offset": 0, "total": 3} == body["meta"]
    assert [o["order_id"] for o in body["data"]["orders"]] == order_ids[::-1][:2]
    for query in ("limit=0", "limit=x", "offset=-1"):
        url = f"{workers[0].url}/views/customer-orders/{customer}?{query}"
        status, error = await get_json(http, url)
        assert status == 400 and "error" in error
    status, error = await get_json(http, f"{workers[0].url}/views/sales/sku-1?from=yesterday")
    assert status == 400 and "from" in error["error"]
