"""Only the saga issues saga commands: a client's ConfirmOrder, RejectOrder, ReserveStock or
ReleaseStock is refused on the public topic and over HTTP, and changes nothing."""

from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from ops.verify import read_topic
from tests.integration.cluster import Kafka, Results, Worker, get_json
from tests.integration.shop import Shop

pytestmark = pytest.mark.integration
RULE = "{} is internal: only the reservation saga may issue it"


async def test_a_client_confirmation_at_a_cent_is_refused_and_the_saga_confirms_at_the_price(
    workers: list[Worker], producer: AIOKafkaProducer, prefix: str, results: Results,
) -> None:
    """The reproduction of issue 17: PlaceOrder and a ConfirmOrder at 0.01, back to back on
    the public topic, used to confirm the order at 0.01 and book 0.01 of sales."""
    shop = Shop(producer, prefix, results, seed=17)
    sku, order_id = f"lamp-{uuid4().hex[:8]}", f"order-{uuid4().hex[:8]}"
    await shop.settle([await shop.send("RegisterProduct", sku,
                                       {"name": "Lamp", "price": "500.00", "stock": 5})])
    place = await shop.send("PlaceOrder", order_id, {
        "customer_id": "mallory", "lines": [{"sku": sku, "quantity": 2}]})
    confirm = await shop.send("ConfirmOrder", order_id, {
        "lines": [{"sku": sku, "quantity": 2, "unit_price": "0.01"}], "total": "0.02"})
    placed, forged = await shop.settle([place, confirm])
    assert placed["status"] == "accepted"
    assert (forged["status"], forged["reason"]) == ("rejected", RULE.format("ConfirmOrder"))

    async with aiohttp.ClientSession() as http:
        order = await read(http, workers[0], f"orders/{order_id}?min_version=2&timeout=30")
        assert (order["status"], order["total"]) == ("confirmed", "1000.00"), order
        assert [line["unit_price"] for line in order["lines"]] == ["500.00"]
        reject = await shop.send("RejectOrder", order_id, {"reason": "changed my mind"})
        release = await shop.send("ReleaseStock", sku, {"order_id": order_id, "quantity": 2})
        for result, kind in zip(await shop.settle([reject, release]),
                                ("RejectOrder", "ReleaseStock"), strict=True):
            assert (result["status"], result["reason"]) == ("rejected", RULE.format(kind))
        restock = await shop.send("Restock", sku, {"quantity": 1})
        await shop.settle([restock])
        product = await read(http, workers[1], f"products/{sku}?min_version=3&timeout=30")
        assert (product["on_hand"], product["reserved"], product["version"]) == (6, 2, 3), product
        order = await read(http, workers[1], f"orders/{order_id}")
        assert (order["status"], order["version"]) == ("confirmed", 2)
        sales = await read(http, workers[0], f"sales/{sku}")
        assert [(h["units"], h["revenue"]) for h in sales["windows"]] == [(2, "1000.00")]


async def test_http_refuses_internal_commands_with_403_and_never_produces_them(
    workers: list[Worker], kafka: Kafka, prefix: str,
) -> None:
    order_id = f"order-{uuid4().hex[:8]}"
    sent = []
    async with aiohttp.ClientSession() as http:
        for kind, payload in [
            ("ConfirmOrder", {"lines": [{"sku": "s", "quantity": 1, "unit_price": "0.01"}],
                              "total": "0.01"}),
            ("RejectOrder", {"reason": "no"}),
            ("ReserveStock", {"order_id": order_id, "quantity": 1}),
            ("ReleaseStock", {"order_id": order_id, "quantity": 1}),
        ]:
            command = {"command_id": str(uuid4()), "type": kind, "aggregate_id": order_id,
                       "payload": payload}
            async with http.post(f"{workers[0].url}/commands", json=command) as response:
                assert response.status == 403
                assert await response.json() == {"error": RULE.format(kind)}
            sent.append(command["command_id"])
        status, spec = await get_json(http, f"{workers[0].url}/openapi.json")
        assert status == 200
        body = spec["paths"]["/commands"]["post"]["requestBody"]["content"]["application/json"]
        assert set(body["schema"]["discriminator"]["mapping"]) == {
            "RegisterProduct", "ChangePrice", "Restock", "PlaceOrder", "PayOrder", "ShipOrder",
            "CancelOrder"}
    produced = await command_ids_on(kafka, f"{prefix}.commands")
    assert produced and not set(sent) & produced


async def read(http: aiohttp.ClientSession, worker: Worker, path: str) -> Any:
    status, body = await get_json(http, f"{worker.url}/views/{path}")
    assert status == 200 and not body["meta"]["stale"], body
    return body["data"]


async def command_ids_on(kafka: Kafka, topic: str) -> set[str]:
    """The command ids on `topic` (skipping the garbage other tests produce there)."""
    found = set()
    for record in await read_topic(kafka.bootstrap, topic):
        try:
            found.add(orjson.loads(record.value)["command_id"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            continue
    return found
