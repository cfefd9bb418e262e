"""A new view is one module and one registry line: served, verified and documented."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest

from ops.verify import differences, read_log
from tables.registry import VERSIONS, VIEWS
from tests.integration.cluster import Kafka, Worker, get_json, wait_until_all_ready
from tests.integration.extra_view.order_lines import VIEW, project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def worker(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory,
                 ) -> AsyncIterator[Worker]:
    root: Path = tmp_path_factory.mktemp("extra-view")
    started = Worker(name="extra-view", bootstrap=kafka.bootstrap,
                     prefix=f"test-{uuid4().hex[:10]}", data_dir=root / "worker",
                     module="tests.integration.extra_view")
    started.start()
    try:
        await wait_until_all_ready([started])
        yield started
    finally:
        started.stop()


async def post(http: aiohttp.ClientSession, worker: Worker, kind: str, aggregate_id: str,
               payload: dict[str, object]) -> dict[str, object]:
    command = {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate_id,
               "payload": payload}
    async with http.post(f"{worker.url}/commands", json=command) as response:
        body: dict[str, object] = await response.json()
        assert response.status in (200, 409), body
        return body


async def test_a_view_added_in_one_module_is_served_verified_and_documented(
    worker: Worker, kafka: Kafka, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = [{"sku": "sku-a", "quantity": 2}, {"sku": "sku-b", "quantity": 3}]
    placed = await post(http, worker, "PlaceOrder", "order-x1",
                        {"customer_id": "cust-x", "lines": lines})
    status, body = await get_json(
        http, f"{worker.url}/views/order-lines/order-x1?token={placed['token']}")
    assert status == 200, body
    assert body["data"] == {"order_id": "order-x1", "lines": 2, "units": 5}
    assert body["meta"]["stale"] is False

    status, document = await get_json(http, f"{worker.url}/openapi.json")
    assert status == 200
    assert "/views/order-lines/{key}" in document["paths"]
    assert "OrderLines" in document["components"]["schemas"]

    monkeypatch.setitem(VIEWS, VIEW.name, VIEW)
    monkeypatch.setitem(VERSIONS, VIEW.name, {VIEW.version: VIEW})
    events, unreadable = await read_log(kafka.bootstrap, f"{worker.prefix}.events")
    assert unreadable == 0 and any(event.aggregate_id == "order-x1" for event in events)
    # The saga rejects the order (its skus are not registered); wait until the views say so.
    status, body = await get_json(
        http, f"{worker.url}/views/orders/order-x1?min_version=2&timeout=30")
    assert status == 200 and body["data"]["status"] == "rejected", body
    for _ in range(50):
        events, _ = await read_log(kafka.bootstrap, f"{worker.prefix}.events")
        found = await differences(events, [worker.url])
        if not found:
            break
        await asyncio.sleep(0.2)
    assert found == []

    wrong = replace(VIEW, project=lambda row, event, key="": {**project(row, event), "units": 0})
    monkeypatch.setitem(VIEWS, VIEW.name, wrong)
    monkeypatch.setitem(VERSIONS, VIEW.name, {VIEW.version: wrong})
    found = await differences(events, [worker.url])
    assert [line for line in found if "order-lines/order-x1" in line], found
