"""Server-Sent Events: every version of a row, in order, and catching up after a reconnect."""

import asyncio
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest

from tests.integration.cluster import Worker, get_json

pytestmark = pytest.mark.integration


async def post(http: aiohttp.ClientSession, worker: Worker, kind: str, sku: str,
               payload: dict[str, Any]) -> dict[str, Any]:
    body = {"command_id": str(uuid4()), "type": kind, "aggregate_id": sku, "payload": payload}
    async with http.post(f"{worker.url}/commands", json=body) as response:
        assert response.status == 200
        return await response.json()


async def next_event(response: aiohttp.ClientResponse, timeout: float = 30) -> dict[str, Any]:
    fields: dict[str, str] = {}
    while True:
        line = (await asyncio.wait_for(response.content.readline(), timeout)).decode().rstrip("\n")
        if not line:
            if fields:
                return {"id": int(fields["id"]), **orjson.loads(fields["data"])}
            continue
        if not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


async def test_a_client_sees_every_version_in_order_and_catches_up_after_reconnecting(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    await post(http, workers[0], "RegisterProduct", sku, {"name": "Kite", "price": "9.00"})
    seen = []
    for worker in workers:  # one of them owns the row, the other redirects there
        async with http.get(f"{worker.url}/views/products/{sku}/events") as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            seen.append([(await next_event(stream))["data"]["version"]])
            for n in range(1, 4):
                await post(http, workers[n % 2], "Restock", sku, {"quantity": n})
            seen[-1] += [(await next_event(stream))["data"]["version"] for _ in range(3)]
            await post(http, workers[0], "ChangePrice", sku, {"price": "8.00"})
            last_id = (await next_event(stream))["id"]
    assert seen == [[1, 2, 3, 4], [5, 6, 7, 8]]

    await post(http, workers[1], "Restock", sku, {"quantity": 1})  # missed while away
    headers = {"Last-Event-ID": str(last_id)}
    async with http.get(f"{workers[0].url}/views/products/{sku}/events",
                        headers=headers) as stream:
        caught_up = await next_event(stream)
        assert caught_up["data"]["version"] == 10 and caught_up["id"] > last_id


async def test_many_clients_on_one_row_and_clients_that_leave(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    await post(http, workers[0], "RegisterProduct", sku, {"name": "Bell", "price": "3.00"})
    url = f"{workers[1].url}/views/products/{sku}/events"
    leaving = [await http.get(url) for _ in range(20)]
    staying = [await http.get(url) for _ in range(20)]
    for stream in leaving + staying:
        assert (await next_event(stream))["data"]["version"] == 1
    for stream in leaving:
        stream.close()
    await post(http, workers[1], "Restock", sku, {"quantity": 5})
    for stream in staying:
        assert (await next_event(stream))["data"]["on_hand"] == 5
        stream.close()
    status, body = await get_json(http, f"{workers[0].url}/views/products/{sku}?min_version=2")
    assert status == 200 and body["meta"]["stale"] is False


async def test_sse_refuses_what_it_cannot_stream(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    status, body = await get_json(http, f"{workers[0].url}/views/sales/sku-1/events")
    assert status == 400 and "error" in body
    status, body = await get_json(http, f"{workers[0].url}/views/nope/x/events")
    assert status == 404



async def test_clients_that_leave_are_forgotten(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    token = (await post(http, workers[0], "RegisterProduct", sku,
                        {"name": "Drum", "price": "5.00"}))["token"]
    _, row = await get_json(http, f"{workers[0].url}/views/products/{sku}?token={token}")
    owner = row["meta"]["served_by"]
    streams = [await http.get(f"{owner}/views/products/{sku}/events") for _ in range(30)]
    for stream in streams:
        await next_event(stream)
    assert await sse_clients(http, owner) >= 30
    for stream in streams:
        stream.close()
    await post(http, workers[0], "Restock", sku, {"quantity": 1})  # a write finds them gone

    async def all_gone() -> None:
        # Another process's state: polled, as there is nothing to await across processes.
        while await sse_clients(http, owner) > 0:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    await asyncio.wait_for(all_gone(), 30)


async def sse_clients(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(f"{url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("shopstream_sse_clients "):
                return float(line.split()[1])
    raise AssertionError("no shopstream_sse_clients in /metrics")
