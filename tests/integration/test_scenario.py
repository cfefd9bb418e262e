"""A seeded random shop on two workers: then `verify` passes and every command has one result."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ops.verify import read_topic
from tests.integration.cluster import ROOT, Kafka, Results, Worker, wait_until_all_ready
from tests.integration.conftest import PARTITIONS
from tests.integration.shop import Shop

pytestmark = pytest.mark.integration
SEED = 20261123


@pytest.fixture
async def clean(kafka: Kafka, tmp_path: Path) -> AsyncIterator[tuple[list[Worker], str, Results]]:
    """Two workers on a prefix of their own: other tests write events behind the command
    handler's back on the shared one, which verify's write side rightly reports."""
    prefix = f"scenario-{uuid4().hex[:8]}"
    pair = [Worker(name=f"scenario-{n}", bootstrap=kafka.bootstrap, prefix=prefix,
                   data_dir=tmp_path / f"worker-{n}", partitions=PARTITIONS) for n in (1, 2)]
    for worker in pair:
        worker.start()
    consumer = AIOKafkaConsumer(f"{prefix}.command-results", bootstrap_servers=kafka.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    collector = Results(consumer)
    try:
        await wait_until_all_ready(pair)
        await consumer.start()
        collector.start()
        yield pair, prefix, collector
    finally:
        await collector.stop()
        for worker in pair:
            worker.stop()


async def test_a_random_shop_folds_to_what_the_workers_serve(
    clean: tuple[list[Worker], str, Results], kafka: Kafka, producer: AIOKafkaProducer,
) -> None:
    workers, prefix, results = clean
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
    await wait_for_quiet(results)

    shipped = {results.by_command[c][0]["aggregate_id"] for c in ship
               if results.by_command[c][0]["status"] == "accepted"}
    dispatched = {r["reply_to"] for answers in results.by_command.values() for r in answers[:1]
                  if r["type"] == "DispatchStock" and r["status"] == "accepted"}
    assert shipped and dispatched == shipped

    assert len(shop.sent) >= 2000
    for command_id in shop.sent:
        answers = results.by_command[command_id]
        assert all(answer == answers[0] for answer in answers), answers
    statuses = {answer["status"] for c in shop.sent for answer in results.by_command[c]}
    assert statuses == {"accepted", "rejected"}
    code, output = await run_verify(kafka, prefix, workers)
    assert code == 0, output[-5000:]
    assert " 0 differences" in output
    assert "reading the event log: " in output and "(done)" in output  # progress, plain

    # a wrong state planted in the command handler's table: verify names it and fails
    changelog = f"{prefix}-order-state-changelog"
    order_id = confirmed[0]
    [*_, last] = [r for r in await read_topic(kafka.bootstrap, changelog)
                  if r.key == order_id.encode()]
    state = orjson.loads(last.value)
    wrong = state | {"version": state["version"] + 7}
    await producer.send_and_wait(changelog, orjson.dumps(wrong), key=last.key,
                                 partition=last.partition)
    try:
        code, output = await run_verify(kafka, prefix, workers, "--quiet")
    finally:
        await producer.send_and_wait(changelog, last.value, key=last.key,
                                     partition=last.partition)
    assert code == 1, output[-5000:]
    named = [line for line in output.splitlines() if line.startswith("order-state/")]
    assert named == [f"order-state/{order_id}: version stored {state['version'] + 7}, "
                     f"the log folds to {state['version']}"], output[-5000:]
    assert " 1 differences" in output and "reading" not in output  # --quiet: no progress


async def run_verify(kafka: Kafka, prefix: str, workers: list[Worker],
                     *options: str) -> tuple[int | None, str]:
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "verify", "--url", workers[0].url,
        "--url", workers[1].url, *options,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SHOPSTREAM_BROKER": f"kafka://{kafka.bootstrap}",
             "SHOPSTREAM_TOPIC_PREFIX": prefix, "SHOPSTREAM_PARTITIONS": "4"},
    )
    output = (await asyncio.wait_for(verify.communicate(), 600))[0].decode()
    return verify.returncode, output


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
