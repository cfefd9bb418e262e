"""A seeded random shop on two workers: then `verify` passes and every command has one result."""

import asyncio
import os
import sys
from decimal import Decimal

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.cluster import ROOT, Kafka, Results, Worker
from tests.integration.shop import Shop

pytestmark = pytest.mark.integration
SEED = 20261123


async def test_a_random_shop_folds_to_what_the_workers_serve(
    workers: list[Worker], kafka: Kafka, producer: AIOKafkaProducer, prefix: str,
    results: Results,
) -> None:
    shop = Shop(producer, prefix, results, SEED)
    rng = shop.rng
    skus = [f"sku-{n:02}" for n in range(20)]
    registered = [await shop.send("RegisterProduct", sku, {
        "name": f"Product {sku}", "price": f"{rng.randint(100, 5000) / 100:.2f}",
        "stock": rng.randint(0, 40)}) for sku in skus]
    await shop.settle(registered)
    restocks = [await shop.send("Restock", rng.choice(skus), {"quantity": rng.randint(1, 10)})
                for _ in range(100)]
    prices = [await shop.send("ChangePrice", rng.choice(skus),
                              {"price": f"{rng.randint(100, 5000) / 100:.2f}"})
              for _ in range(20)]

    order_ids = [f"order-{n:04}" for n in range(1400)]
    placed = []
    for order_id in order_ids:
        lines = rng.sample([*skus, "sku-unknown"], rng.randint(1, 3))
        placed.append(await shop.send("PlaceOrder", order_id, {
            "customer_id": f"cust-{rng.randint(1, 60)}",
            "lines": [{"sku": sku, "quantity": rng.randint(1, 4)} for sku in lines]}))
    stale = [await shop.send("Restock", rng.choice(skus), {"quantity": 1},
                             expected_version=rng.randint(50, 60)) for _ in range(30)]
    await shop.settle(restocks + prices + placed + stale)
    outcomes = await wait_for_outcomes(results, order_ids)

    confirmed = [o for o in order_ids if outcomes[o] == "ConfirmOrder"]
    async with aiohttp.ClientSession() as http:
        totals = {o: await order_total(http, workers[0], o) for o in confirmed}
    paid_ids, pay_commands = [], []
    for order_id in confirmed:
        right = rng.random() < 0.85
        amount = totals[order_id] if right else totals[order_id] + Decimal("0.01")
        pay_commands.append(await shop.send("PayOrder", order_id, {"amount": str(amount)}))
        if right:
            paid_ids.append(order_id)
    for order_id in rng.sample(order_ids, 200):
        pay_commands.append(await shop.send("CancelOrder", order_id, {"reason": "changed mind"}))
    await shop.settle(pay_commands)
    ship = [await shop.send("ShipOrder", o, {}) for o in paid_ids[: len(paid_ids) // 2]]
    ship += [await shop.send("ShipOrder", o, {}) for o in rng.sample(order_ids, 40)]
    await shop.settle(ship)
    late_cancels = [await shop.send("CancelOrder", o, {"reason": "too late?"})
                    for o in rng.sample(paid_ids, min(60, len(paid_ids)))]
    duplicates = rng.sample(sorted(shop.sent), 120)
    for command_id in duplicates:
        await shop.resend(shop.sent[command_id])
    await shop.settle(late_cancels)
    await shop.settle([c for c in duplicates])
    await wait_for_outcomes(results, order_ids)

    assert len(shop.sent) >= 2000
    for command_id in shop.sent:
        answers = results.by_command[command_id]
        assert all(answer == answers[0] for answer in answers), answers
    statuses = {answer["status"] for c in shop.sent for answer in results.by_command[c]}
    assert statuses == {"accepted", "rejected"}
    await wait_for_quiet(results)
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "verify", "--url", workers[0].url,
        "--url", workers[1].url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SHOPSTREAM_BROKER": f"kafka://{kafka.bootstrap}",
             "SHOPSTREAM_TOPIC_PREFIX": prefix, "SHOPSTREAM_PARTITIONS": "4"},
    )
    output = (await asyncio.wait_for(verify.communicate(), 600))[0].decode()
    assert verify.returncode == 0, output[-5000:]
    assert " 0 differences" in output


async def wait_for_outcomes(results: Results, order_ids: list[str],
                            timeout: float = 300) -> dict[str, str]:
    """Each order's saga outcome: the accepted ConfirmOrder or RejectOrder it ended with."""
    def ended() -> dict[str, str]:
        return {r["aggregate_id"]: r["type"] for answers in results.by_command.values()
                for r in answers[:1] if r["status"] == "accepted"
                and r["type"] in ("ConfirmOrder", "RejectOrder")}

    await results.wait_until(lambda: set(order_ids) <= set(ended()), timeout)
    return ended()


async def wait_for_quiet(results: Results, quiet: float = 3.0) -> None:
    """Until no result has arrived for `quiet` seconds: the saga's last commands are done."""
    while True:
        before = sum(len(answers) for answers in results.by_command.values())
        await asyncio.sleep(quiet)
        if sum(len(answers) for answers in results.by_command.values()) == before:
            return


async def order_total(http: aiohttp.ClientSession, worker: Worker, order_id: str) -> Decimal:
    """The total of a confirmed order (version 2), read once the view reflects it."""
    url = f"{worker.url}/views/orders/{order_id}?min_version=2&timeout=30"
    async with http.get(url) as response:
        body = await response.json()
    assert response.status == 200 and not body["meta"]["stale"], body
    return Decimal(body["data"]["total"])
