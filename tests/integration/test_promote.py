"""A built version made resident on the real broker: orders v2 is built and switched to, the
workers restart with v2 as the module's VIEW (its build short of the app group on the
partitions of the last orders), and every row reads as before, new commands fold, list
queries and `verify` agree; then v1, resident no more, is retired."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from tests.integration.cluster import Kafka, Worker, get_json, own_pair, wait_until_all_ready
from tests.integration.test_evolution import topic_names, until, views

pytestmark = pytest.mark.integration
PARTITIONS = 4
RESIDENT_V2 = "tests.integration.orders_v2_resident"
SKU = "promo-sku"


@pytest.fixture
async def pair(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory,
               ) -> AsyncIterator[list[Worker]]:
    """Two workers of this test's own: the test restarts them as another deploy."""
    async with own_pair(kafka, tmp_path_factory.mktemp("promote"), "promote",
                        partitions=PARTITIONS) as started:
        yield started


async def command(http: aiohttp.ClientSession, worker: Worker, kind: str, aggregate_id: str,
                   asked: Callable[[], Worker] | None = None, **payload: Any) -> str:
    """Send a command to `worker` and return its result's token. A late result (202, a loaded
    machine) is asked for again, of `asked()` if given (a worker still up, as a client whose
    server went away would ask another)."""
    body = {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate_id,
            "payload": payload}
    async with http.post(f"{worker.url}/commands", json=body) as response:
        status, answer = response.status, await response.json()
    for _ in range(24):
        if status not in (202, 404):
            break
        server = asked() if asked is not None else worker
        try:
            status, answer = await get_json(http, f"{server.url}/commands/{body['command_id']}"
                                                  "?wait=5")
        except aiohttp.ClientError:
            if asked is None:
                raise
            status = 202  # that worker was stopped meanwhile: ask one still up
    assert status == 200 and answer["status"] == "accepted", answer
    return str(answer["token"])


async def place(http: aiohttp.ClientSession, worker: Worker, order_id: str, n: int,
                asked: Callable[[], Worker] | None = None) -> str:
    """An order that the saga confirms (the sku is registered) or, one in three, rejects."""
    sku = SKU if n % 3 else "promo-unknown"
    return await command(http, worker, "PlaceOrder", order_id, asked,
                         customer_id=f"promo-cust-{n % 4}",
                         channel="mobile" if n % 2 else "web",
                         lines=[{"sku": sku, "quantity": 1}])


async def settled_rows(http: aiohttp.ClientSession, worker: Worker,
                       ids: list[str]) -> dict[str, dict[str, Any]]:
    """Every order's row once the saga has decided each (none is `placed` any more)."""
    rows: dict[str, dict[str, Any]] = {}

    async def settled() -> bool:
        for order_id in ids:
            status, body = await get_json(http, f"{worker.url}/views/orders/{order_id}")
            if status != 200 or body["data"]["status"] == "placed":
                return False
            rows[order_id] = body
        return True

    await until(settled)
    return rows


async def listed(http: aiohttp.ClientSession, worker: Worker, status: str) -> set[str]:
    status_code, answer = await get_json(
        http, f"{worker.url}/views/orders?{urlencode({'status': status, 'limit': 500})}")
    assert status_code == 200 and answer["meta"]["partial"] is False, answer
    assert answer["meta"]["next_cursor"] is None, answer
    return {row["order_id"] for row in answer["data"]}


async def read_events(kafka: Kafka, prefix: str) -> list[tuple[int, int, dict[str, Any]]]:
    """(partition, offset, event) of the whole event log."""
    return [(record.partition, record.offset, orjson.loads(record.value))
            for record in await read_topic(kafka, f"{prefix}.events")]


async def read_topic(kafka: Kafka, topic: str) -> list[Any]:
    """Every record of the topic, partition by partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    found = []
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                found.extend((await consumer.getmany(tp, timeout_ms=1000)).get(tp, []))
    finally:
        await consumer.stop()
    return found


async def committed(kafka: Kafka, group: str, topic: str) -> dict[int, OffsetAndMetadata]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await admin.close()
    return {tp.partition: found for tp, found in offsets.items()}


async def folded_to_end(kafka: Kafka, prefix: str) -> bool:
    """Whether the app group has committed every event-log partition to its end."""
    topic = f"{prefix}.events"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()
    done = await committed(kafka, prefix, topic)
    return all(done[tp.partition].offset >= end for tp, end in ends.items())


async def set_build_short(kafka: Kafka, prefix: str, late: list[str]) -> dict[int, int]:
    """Leave v2's build as if it had stopped before the first event of the `late` orders on
    each of their partitions: its group committed there, their rows not in its changelog.
    Returns those offsets by partition."""
    starts: dict[int, int] = {}
    for partition, offset, event in await read_events(kafka, prefix):
        if event["aggregate_id"] in late:
            starts[partition] = min(offset, starts.get(partition, offset))
    group = f"{prefix}.view-orders-v2"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = {p: TopicPartition(f"{prefix}.events", p) for p in starts}
        consumer.assign(list(tps.values()))
        await consumer.commit({tps[p]: offset for p, offset in starts.items()})
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for partition, _, event in await read_events(kafka, prefix):
            if event["aggregate_id"] in late and event["type"] == "OrderPlaced":
                await producer.send_and_wait(f"{prefix}.view-orders-v2-changelog", None,
                                             event["aggregate_id"].encode(), partition=partition)
    finally:
        await producer.stop()
    return starts


async def redeploy_behind(kafka: Kafka, pair: list[Worker], module: str,
                          set_short: Callable[[], Awaitable[dict[int, int]]]) -> None:
    """Stop the workers, put the build behind (`set_short`: where it now stands, by event-log
    partition), check that the app group is past it, and start them as `module`."""
    prefix = pair[0].prefix
    # The app group commits every 2.8 s; a worker stopped in between can leave its last events
    # uncommitted (they are folded again at the restart), and then the gap set is none on
    # that partition (CI saw it). So the workers stop once the group has committed it all.
    await until(lambda: folded_to_end(kafka, prefix))
    for worker in pair:
        worker.stop()
    short = await set_short()
    app_group = await committed(kafka, prefix, f"{prefix}.events")
    # The gap is real: the app group (v1's fold) is past where v2's build now stands.
    assert short and all(app_group[p].offset > offset for p, offset in short.items()), (
        short, app_group)
    for worker in pair:
        worker.module = module
        worker.start()
    await wait_until_all_ready(pair)


async def read_as_before(http: aiohttp.ClientSession, pair: list[Worker], view: str,
                         before: dict[str, dict[str, Any]]) -> None:
    """Every key reads from both workers as it did before, from v2."""
    for worker in pair:
        for key, earlier in before.items():
            status, body = await get_json(http, f"{worker.url}/views/{view}/{key}")
            assert status == 200, (worker.name, key, body)
            assert body["meta"]["view_version"] == 2, body
            assert body["data"] == earlier["data"], (key, body)
            assert body["meta"]["versions"] == earlier["meta"]["versions"]


async def built_and_switched(kafka: Kafka, pair: list[Worker], view: str,
                             module: str = "streams") -> None:
    """Build `view` v2 beside v1 and switch to it once every worker has it caught up."""
    prefix, urls = pair[0].prefix, tuple(worker.url for worker in pair)
    code, output = await views(kafka, prefix, pair[0], "rebuild", view, "--version", "2",
                               module=module)
    assert code == 0, output
    code, output = await views(kafka, prefix, pair[0], "switch", view, "2", "--wait", "300",
                               urls=urls, module=module)
    assert code == 0, output


async def test_orders_v2_made_resident_keeps_its_rows_and_v1_is_retired(
    kafka: Kafka, pair: list[Worker], http: aiohttp.ClientSession,
) -> None:
    prefix = pair[0].prefix
    urls = tuple(worker.url for worker in pair)
    await command(http, pair[0], "RegisterProduct", SKU, name="Promo", price="2.50", stock=1000)
    early = [f"promo-{n}" for n in range(24)]
    for n, order_id in enumerate(early):
        await place(http, pair[n % 2], order_id, n)
    rows = await settled_rows(http, pair[0], early)
    cancelled = next(order_id for order_id in early if rows[order_id]["data"]["status"]
                     == "confirmed")
    await command(http, pair[1], "CancelOrder", cancelled, reason="changed my mind")

    await built_and_switched(kafka, pair, "orders")
    late = [f"promo-late-{n}" for n in range(12)]
    for n, order_id in enumerate(late):
        await place(http, pair[n % 2], order_id, n)
    ids = early + late
    before = await settled_rows(http, pair[0], ids)
    assert {body["meta"]["view_version"] for body in before.values()} == {2}
    assert before[cancelled]["data"]["status"] == "cancelled"
    code, output = await views(kafka, prefix, pair[0], "retire", "orders", "1")
    assert code == 2 and "orders-v1 is the resident version" in output, output

    await redeploy_behind(kafka, pair, RESIDENT_V2, lambda: set_build_short(kafka, prefix, late))
    await read_as_before(http, pair, "orders", before)
    for partition, offset in (await committed(kafka, f"{prefix}.view-orders-v2",
                                              f"{prefix}.events")).items():
        assert offset.metadata == "resident", (partition, offset)

    token = await command(http, pair[1], "CancelOrder", late[1], reason="too late")
    status, body = await get_json(http, f"{pair[0].url}/views/orders/{late[1]}?token={token}")
    assert status == 200 and body["data"]["status"] == "cancelled", body
    token = await place(http, pair[0], "promo-after", 1)
    status, body = await get_json(http, f"{pair[1].url}/views/orders/promo-after?token={token}")
    assert status == 200 and body["data"]["channel"] == "mobile", body
    assert body["meta"]["stale"] is False, body
    await settled_rows(http, pair[0], [*ids, "promo-after"])

    # The index of v2 (kept by no build) was made from its rows: list queries find them all.
    for worker in pair:
        assert {cancelled, late[1]} <= await listed(http, worker, "cancelled")
        rejected = {order_id for order_id in ids if before[order_id]["data"]["status"]
                    == "rejected"}
        assert rejected - {late[1]} <= await listed(http, worker, "rejected")

    code, output = await views(kafka, prefix, pair[0], urls=urls, module=RESIDENT_V2,
                               command="verify")
    assert code == 0, output[-3000:]

    code, output = await views(kafka, prefix, pair[0], "list", module=RESIDENT_V2)
    assert "orders v1  former" in output and "orders v2  live (resident)" in output, output
    code, output = await views(kafka, prefix, pair[0], "switch", "orders", "1",
                               module=RESIDENT_V2)
    assert code == 2 and "orders-v1 is former" in output, output
    code, output = await views(kafka, prefix, pair[0], "retire", "orders", "2",
                               module=RESIDENT_V2)
    assert code == 2 and "orders-v2 is the resident version" in output, output

    code, output = await views(kafka, prefix, pair[0], "retire", "orders", "1", urls=urls,
                               module=RESIDENT_V2)
    assert code == 0, output
    topics = await topic_names(kafka)
    for topic in (f"{prefix}-orders-v1-changelog", f"{prefix}-orders-v1-by-status-changelog"):
        assert topic not in topics, output
        assert topic in output, output
    code, output = await views(kafka, prefix, pair[0], "list", module=RESIDENT_V2)
    assert "orders v1  retired" in output, output

    async def v1_files_gone() -> bool:
        return not [path for worker in pair for path in worker.data_dir.rglob("orders-v1-*")]

    await until(v1_files_gone)
    status, body = await get_json(http, f"{pair[1].url}/views/orders/{early[0]}")
    assert status == 200 and body["meta"]["view_version"] == 2, body
