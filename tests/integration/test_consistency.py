"""Read-your-writes over HTTP: a command's result carries a token, and views wait for it."""

import asyncio
import base64
import signal
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.cluster import Worker, get_json

pytestmark = pytest.mark.integration


def command(kind: str, aggregate_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate_id,
            "payload": payload}


async def post(http: aiohttp.ClientSession, worker: Worker, body: dict[str, Any],
               query: str = "") -> tuple[int, Any]:
    async with http.post(f"{worker.url}/commands{query}", json=body) as response:
        return response.status, await response.json()



async def test_post_answers_with_the_result_and_a_token(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    status, result = await post(http, workers[0], command(
        "RegisterProduct", sku, {"name": "Lamp", "price": "12.00", "stock": 3}))
    assert (status, result["status"], result["version"]) == (200, "accepted", 1)
    assert len(result["positions"]) == 1 and result["token"]
    status, again = await get_json(http, f"{workers[1].url}/commands/{result['command_id']}")
    assert (status, again) == (200, result)
    status, rejected = await post(http, workers[1], command(
        "ChangePrice", sku, {"price": "1.00"}) | {"expected_version": 7})
    assert (status, rejected["status"]) == (409, "rejected")
    assert "current version is 1" in rejected["reason"]


async def test_unknown_and_malformed_command_ids(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    status, body = await get_json(http, f"{workers[0].url}/commands/{uuid4()}")
    assert status == 404 and "error" in body
    status, body = await get_json(http, f"{workers[0].url}/commands/not-a-uuid")
    assert status == 400 and "error" in body


async def test_a_thousand_writes_read_back_with_their_token_are_never_stale(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    await post(http, workers[0], command("RegisterProduct", sku,
                                         {"name": "Pen", "price": "1.50", "stock": 100_000}))

    async def cycle(n: int) -> list[bool]:
        writer, reader = workers[n % 2], workers[(n + 1) % 2]
        order_id, customer = f"order-{uuid4().hex[:10]}", f"cust-{n % 17}"
        status, result = await post(http, writer, command("PlaceOrder", order_id, {
            "customer_id": customer, "lines": [{"sku": sku, "quantity": 1}]}))
        assert status == 200, result
        token = result["token"]
        _, order = await get_json(http, f"{reader.url}/views/orders/{order_id}?token={token}")
        _, listed = await get_json(
            http, f"{reader.url}/views/customer-orders/{customer}?token={token}&limit=500")
        assert order["data"]["version"] >= 1
        assert order_id in {o["order_id"] for o in listed["data"]["orders"]}
        return [order["meta"]["stale"], listed["meta"]["stale"]]

    stale = []
    for start in range(0, 1000, 25):
        for flags in await asyncio.gather(*(cycle(n) for n in range(start, start + 25))):
            stale.extend(flags)
    assert len(stale) == 2000 and not any(stale)


async def test_a_read_waiting_for_what_has_not_happened_times_out_stale_with_its_lag(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    status, result = await post(http, workers[0], command(
        "RegisterProduct", sku, {"name": "Cup", "price": "2.00", "stock": 1}))
    assert status == 200
    [position] = result["positions"]
    ahead = {"p": [[position["partition"], position["offset"] + 10**6]], "a": sku, "v": 9}
    token = base64.urlsafe_b64encode(orjson.dumps(ahead)).decode().rstrip("=")
    status, body = await get_json(http, f"{workers[1].url}/views/products/{sku}"
                                   f"?token={token}&timeout=0.5")
    assert status == 200 and body["data"]["version"] == 1
    applied = body["meta"]["applied"][str(position["partition"])]
    assert applied >= position["offset"]
    assert body["meta"]["stale"] is True
    assert body["meta"]["behind"] == {f"events[{position['partition']}]":
                                      position["offset"] + 10**6 - applied}
    status, body = await get_json(http, f"{workers[1].url}/views/products/{sku}?min_version=2"
                                   f"&timeout=0.2")
    assert body["meta"]["stale"] is True and body["meta"]["behind"] == {"versions": 1}
    status, body = await get_json(http, f"{workers[1].url}/views/products/{sku}?token=bogus")
    assert status == 400


async def test_a_read_behind_a_held_back_projection_is_stale_with_its_lag_then_catches_up(
    workers: list[Worker], http: aiohttp.ClientSession, producer: AIOKafkaProducer,
    prefix: str,
) -> None:
    """Stop (SIGSTOP) the worker that forwards an order's events to its customer's row, write
    the order's event, and read the row on the other worker with the event's token."""
    urls = {worker.url: worker for worker in workers}
    while True:
        order_id, customer = f"order-{uuid4().hex[:8]}", f"cust-{uuid4().hex[:8]}"
        _, order_row = await get_json(http, f"{workers[0].url}/views/orders/{order_id}")
        _, customer_row = await get_json(http, f"{workers[0].url}/views/customer-orders/{customer}")
        forwarder = urls[order_row["served_by"]]
        reader = urls[customer_row["served_by"]]
        if forwarder is not reader:
            break
    topic = f"{prefix}.events"
    placed = orjson.dumps({
        "event_id": str(uuid4()), "type": "OrderPlaced", "aggregate_id": order_id,
        "version": 1, "command_id": str(uuid4()), "correlation_id": str(uuid4()),
        "occurred_at": "2026-11-23T12:00:00Z",
        "payload": {"customer_id": customer, "lines": [{"sku": "sku-x", "quantity": 1}]}})
    assert forwarder.process is not None
    forwarder.process.send_signal(signal.SIGSTOP)
    try:
        sent = await producer.send_and_wait(topic, placed, key=order_id.encode())
        token = base64.urlsafe_b64encode(orjson.dumps(
            {"p": [[sent.partition, sent.offset]], "a": order_id, "v": 1})).decode()
        url = f"{reader.url}/views/customer-orders/{customer}?token={token}"
        status, body = await get_json(http, f"{url}&timeout=1")
        assert status == 404 and body["stale"] is True
        reached = body["applied"].get(str(sent.partition), -1)
        assert body["behind"] == {f"events[{sent.partition}]": sent.offset - reached}
        assert sent.offset - reached >= 1
    finally:
        forwarder.process.send_signal(signal.SIGCONT)
    status, body = await get_json(http, f"{url}&timeout=30")
    assert status == 200 and body["meta"]["stale"] is False
    assert [o["order_id"] for o in body["data"]["orders"]] == [order_id]
