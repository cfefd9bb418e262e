"""A built version of a view fed through a repartition topic made resident on the real broker:
customer-orders v2 is built and switched to, more orders come, the workers restart with v2 as
the module's VIEW (its build set short of the app group on every partition of the late
orders), and every customer reads as before from both workers, new commands fold, `verify`
agrees; then v1, resident no more, is retired with its changelog and repartition topic."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.integration.cluster import Kafka, Worker, get_json, own_pair
from tests.integration.test_evolution import topic_names, until, views
from tests.integration.test_promote import (
    built_and_switched,
    command,
    committed,
    read_as_before,
    read_events,
    read_topic,
    redeploy_behind,
)

pytestmark = pytest.mark.integration
PARTITIONS = 4
DECLARED = "tests.integration.repartitioned_v2"
RESIDENT_V2 = "tests.integration.customer_orders_v2_resident"
SKU = "cpromo-sku"
Rows = dict[tuple[int, str], bytes]  # (changelog partition, customer) -> the row's JSON


@pytest.fixture
async def pair(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory,
               ) -> AsyncIterator[list[Worker]]:
    """Two workers of this test's own, declaring customer-orders v2: the test restarts them
    as another deploy."""
    async with own_pair(kafka, tmp_path_factory.mktemp("cpromote"), "cpromote",
                        partitions=PARTITIONS, module=DECLARED) as started:
        yield started


async def place(http: aiohttp.ClientSession, worker: Worker, order_id: str, customer: str,
                n: int) -> str:
    """An order that the saga confirms (the sku is registered) or, one in three, rejects."""
    sku = SKU if n % 3 else "cpromo-unknown"
    return await command(http, worker, "PlaceOrder", order_id, customer_id=customer,
                         lines=[{"sku": sku, "quantity": 1}])


async def settled_customers(http: aiohttp.ClientSession, worker: Worker,
                            orders: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every customer's row once it shows each of their orders (`orders`: order -> customer)
    decided by the saga (none `placed`)."""
    rows: dict[str, dict[str, Any]] = {}

    async def settled() -> bool:
        for customer in sorted(set(orders.values())):
            status, body = await get_json(http, f"{worker.url}/views/customer-orders/{customer}")
            if status != 200:
                return False
            shown = {s["order_id"]: s["status"] for s in body["data"]["orders"]}
            if ({o for o, c in orders.items() if c == customer} - shown.keys()
                    or "placed" in shown.values()):
                return False
            rows[customer] = body
        return True

    await until(settled)
    return rows


async def built_rows(kafka: Kafka, prefix: str) -> Rows:
    """The built changelog of customer-orders v2: per partition and key, the last row."""
    rows: Rows = {}
    for record in await read_topic(kafka, f"{prefix}.view-customer-orders-v2-changelog"):
        if record.value is None:
            rows.pop((record.partition, record.key.decode()), None)
        else:
            rows[record.partition, record.key.decode()] = record.value
    return rows


async def set_build_short(kafka: Kafka, prefix: str, late: list[str],
                          earlier: Rows) -> dict[int, int]:
    """Leave v2's build as if its fold had stopped before the first event of the `late`
    orders on each of their event-log partitions: every repartition partition's commit
    metadata says its rows reach no further, and each changed row is put back as it was
    (`earlier`; a customer of late orders only, deleted). Returns those offsets by
    partition."""
    starts: dict[int, int] = {}
    for partition, offset, event in await read_events(kafka, prefix):
        if event["aggregate_id"] in late:
            starts[partition] = min(offset, starts.get(partition, offset))
    group = f"{prefix}.view-customer-orders-v2-fold"
    repartition = f"{prefix}.view-customer-orders-v2-repartition"
    folded = await committed(kafka, group, repartition)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        shorter = {}
        for q, found in folded.items():
            reached = {int(s): o for s, o in orjson.loads(found.metadata).items()}
            reached.update({s: min(reached.get(s, -1), start - 1) for s, start in starts.items()})
            shorter[TopicPartition(repartition, q)] = (found.offset, orjson.dumps(
                {str(s): o for s, o in sorted(reached.items())}).decode())
        consumer.assign(list(shorter))
        await consumer.commit(shorter)
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        topic = f"{prefix}.view-customer-orders-v2-changelog"
        for (q, customer), row in (await built_rows(kafka, prefix)).items():
            if earlier.get((q, customer)) != row:  # a restore keeps the row come furthest:
                await producer.send_and_wait(topic, None, customer.encode(), partition=q)
                if (q, customer) in earlier:  # the older one goes in after a tombstone
                    await producer.send_and_wait(topic, earlier[q, customer], customer.encode(),
                                                 partition=q)
    finally:
        await producer.stop()
    return starts


async def read_customer(http: aiohttp.ClientSession, worker: Worker, customer: str,
                        token: str) -> dict[str, Any]:
    status, body = await get_json(
        http, f"{worker.url}/views/customer-orders/{customer}?token={token}")
    assert status == 200 and body["meta"]["stale"] is False, body
    assert body["meta"]["view_version"] == 2, body
    return body["data"]  # type: ignore[no-any-return]


async def test_customer_orders_v2_made_resident_keeps_its_rows_and_v1_is_retired(
    kafka: Kafka, pair: list[Worker], http: aiohttp.ClientSession,
) -> None:
    prefix = pair[0].prefix
    urls = tuple(worker.url for worker in pair)
    await command(http, pair[0], "RegisterProduct", SKU, name="Promo", price="2.50", stock=1000)
    early = {f"cpromo-{n}": f"cpromo-cust-{n % 6}" for n in range(24)}
    for n, (order_id, customer) in enumerate(early.items()):
        await place(http, pair[n % 2], order_id, customer, n)
    rows = await settled_customers(http, pair[0], early)
    cancelled = next(s["order_id"] for row in rows.values() for s in row["data"]["orders"]
                     if s["status"] == "confirmed")
    await command(http, pair[1], "CancelOrder", cancelled, reason="changed my mind")

    await built_and_switched(kafka, pair, "customer-orders", module=DECLARED)
    earlier = await built_rows(kafka, prefix)  # v2 caught up: every early event is in there
    # Late orders: of customers with early ones (their rows must take both) and of new ones.
    late = {f"cpromo-late-{n}": f"cpromo-cust-{n % 8}" for n in range(16)}
    for n, (order_id, customer) in enumerate(late.items()):
        await place(http, pair[n % 2], order_id, customer, n)
    orders = {**early, **late}
    before = await settled_customers(http, pair[0], orders)
    assert {body["meta"]["view_version"] for body in before.values()} == {2}
    code, output = await views(kafka, prefix, pair[0], "retire", "customer-orders", "1",
                               module=DECLARED)
    assert code == 2 and "customer-orders-v1 is the resident version" in output, output

    await redeploy_behind(kafka, pair, RESIDENT_V2,
                          lambda: set_build_short(kafka, prefix, list(late), earlier))
    await read_as_before(http, pair, "customer-orders", before)
    for q, offset in (await committed(kafka, f"{prefix}.view-customer-orders-v2-fold",
                                      f"{prefix}.view-customer-orders-v2-repartition")).items():
        assert offset.metadata == "resident", (q, offset)

    token = await place(http, pair[0], "cpromo-after", "cpromo-cust-1", 1)
    data = await read_customer(http, pair[1], "cpromo-cust-1", token)
    assert "cpromo-after" in {s["order_id"] for s in data["orders"]}, data
    late_confirmed = next(s["order_id"] for row in before.values() for s in row["data"]["orders"]
                          if s["status"] == "confirmed" and s["order_id"] in late)
    token = await command(http, pair[1], "CancelOrder", late_confirmed, reason="too late")
    data = await read_customer(http, pair[0], late[late_confirmed], token)
    assert {s["order_id"]: s["status"] for s in data["orders"]}[late_confirmed] == "cancelled"
    await settled_customers(http, pair[0], {**orders, "cpromo-after": "cpromo-cust-1"})

    code, output = await views(kafka, prefix, pair[0], urls=urls, module=RESIDENT_V2,
                               command="verify")
    assert code == 0, output[-3000:]

    code, output = await views(kafka, prefix, pair[0], "list", module=RESIDENT_V2)
    assert "customer-orders v1  former" in output, output
    assert "customer-orders v2  live (resident)" in output, output
    code, output = await views(kafka, prefix, pair[0], "switch", "customer-orders", "1",
                               module=RESIDENT_V2)
    assert code == 2 and "customer-orders-v1 is former" in output, output
    code, output = await views(kafka, prefix, pair[0], "retire", "customer-orders", "2",
                               module=RESIDENT_V2)
    assert code == 2 and "customer-orders-v2 is the resident version" in output, output

    def v1_files() -> list[Any]:
        return [path for worker in pair for path in worker.data_dir.rglob("customer-orders-v1-*")]

    assert v1_files()
    code, output = await views(kafka, prefix, pair[0], "retire", "customer-orders", "1",
                               urls=urls, module=RESIDENT_V2)
    assert code == 0, output
    topics = await topic_names(kafka)
    for topic in (f"{prefix}-customer-orders-v1-changelog",
                  f"{prefix}.customer-orders-v1-repartition"):
        assert topic not in topics, output
        assert topic in output, output
    code, output = await views(kafka, prefix, pair[0], "list", module=RESIDENT_V2)
    assert "customer-orders v1  retired" in output, output

    async def v1_files_gone() -> bool:
        return not v1_files()

    await until(v1_files_gone)
    status, body = await get_json(http, f"{pair[1].url}/views/customer-orders/cpromo-cust-0")
    assert status == 200 and body["meta"]["view_version"] == 2, body
