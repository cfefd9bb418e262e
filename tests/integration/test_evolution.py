"""Views and events evolve on the real broker: orders v2 is built beside v1 under live
traffic from a log holding v1 events (a worker killed with SIGKILL while it builds), compared,
switched to while readers read, rolled back and retired; an event newer than the code is
dead-lettered naming its version."""

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.partitioning import owning_partition
from tests.integration.cluster import ROOT, Kafka, Worker, get_json, wait_until_all_ready
from tests.integration.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration
WAIT = 120.0
BULK = 12000
SLOW_CLI = 600.0  # compare waits up to 300 s for v1, which recovers slowly after a SIGKILL


async def views(kafka: Kafka, prefix: str, worker: Worker, *arguments: str,
                urls: tuple[str, ...] = (), module: str = "streams",
                command: str = "views") -> tuple[int, str]:
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, command, *arguments,
        *(part for url in urls for part in ("--url", url)), "--quiet", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SHOPSTREAM_BROKER": f"kafka://{kafka.bootstrap}",
             "SHOPSTREAM_TOPIC_PREFIX": prefix, "SHOPSTREAM_PARTITIONS": str(worker.partitions),
             "SHOPSTREAM_WEB_PORT": str(worker.port),
             "SHOPSTREAM_DATA_DIR": str(worker.data_dir.with_name("views-cli"))})
    output = (await asyncio.wait_for(run.communicate(), SLOW_CLI))[0].decode()
    assert run.returncode is not None
    return run.returncode, output


async def place(http: aiohttp.ClientSession, worker: Worker, order_id: str,
                **payload: Any) -> dict[str, Any]:
    body = {"command_id": str(uuid4()), "type": "PlaceOrder", "aggregate_id": order_id,
            "payload": {"customer_id": "cust-evo", "lines": [{"sku": "evo-sku", "quantity": 1}],
                        **payload}}
    async with http.post(f"{worker.url}/commands", json=body) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == 200, answer
        return answer


def product_registered(prefix: str, sku: str) -> tuple[str, bytes, bytes]:
    command_id = str(uuid4())
    event = {"event_id": str(uuid4()), "type": "ProductRegistered", "schema_version": 1,
             "aggregate_id": sku, "version": 1, "command_id": command_id,
             "correlation_id": command_id, "occurred_at": "2025-06-01T10:00:00Z",
             "payload": {"name": "Bulk", "price": "1.00", "stock": 1}}
    return f"{prefix}.events", orjson.dumps(event), sku.encode()


def v1_order_placed(prefix: str, order_id: str) -> tuple[str, bytes, bytes]:
    """An OrderPlaced as code before channels wrote it: schema version 1, no channel."""
    command_id = str(uuid4())
    event = {"event_id": str(uuid4()), "type": "OrderPlaced", "schema_version": 1,
             "aggregate_id": order_id, "version": 1, "command_id": command_id,
             "correlation_id": command_id, "occurred_at": "2025-06-01T10:00:00Z",
             "payload": {"customer_id": "cust-old", "lines": [{"sku": "old-sku", "quantity": 2}]}}
    return f"{prefix}.events", order_id.encode(), orjson.dumps(event)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = WAIT,
                seen: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await condition():
            return
        assert time.monotonic() < deadline, f"the condition was not met in time {seen()}"
        await asyncio.sleep(0.2)


async def until_ready(http: aiohttp.ClientSession, worker: Worker, view: str, version: int,
                      timeout: float = WAIT) -> None:
    """Until `views list` says the version is ready; on timeout, its last entry seen."""
    last: dict[str, Any] = {}

    async def ready() -> bool:
        _, body = await get_json(http, f"{worker.url}/admin/views")
        [entry] = [v for v in body["versions"] if v["view"] == view and v["version"] == version]
        last.update(entry)
        return bool(entry["state"] == "ready")

    await until(ready, timeout, lambda: last)


async def gone(pid: int) -> bool:
    return exited(pid)


def exited(pid: int) -> bool:
    """No longer there, or a zombie (Linux's /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def local(http: aiohttp.ClientSession, worker: Worker) -> dict[str, Any]:
    status, body = await get_json(http, f"{worker.url}/admin/views/local")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def order_version(body: dict[str, Any]) -> int:
    return int(body["data"]["version"])


class Readers:
    """Read rows continuously from every worker, each with the token of its last write:
    every status seen, and whether any row's version (`version_of` an answer) went back for
    a reader."""

    def __init__(self, http: aiohttp.ClientSession, workers: list[Worker],
                 tokens: dict[str, str], view: str = "orders",
                 version_of: Callable[[dict[str, Any]], int] = order_version) -> None:
        self.http, self.workers, self.tokens = http, workers, tokens
        self.view, self.version_of = view, version_of
        self.statuses: list[int] = []
        self.backwards: list[str] = []
        self.view_versions: set[int] = set()
        self.stopping = asyncio.Event()

    async def read(self, worker: Worker) -> None:
        seen: dict[str, int] = {}
        while not self.stopping.is_set():
            for key, token in list(self.tokens.items()):
                status, body = await get_json(
                    self.http, f"{worker.url}/views/{self.view}/{key}?token={token}")
                self.statuses.append(status)
                if status != 200:
                    continue
                version = self.version_of(body)
                self.view_versions.add(body["meta"]["view_version"])
                if version < seen.get(key, 0):
                    self.backwards.append(f"{key}: {seen[key]} then {version}")
                seen[key] = version

    async def run_while(self, work: Awaitable[Any]) -> Any:
        tasks = [asyncio.create_task(self.read(worker)) for worker in self.workers]
        try:
            return await work
        finally:
            self.stopping.set()
            await asyncio.gather(*tasks)
            self.stopping.clear()


async def test_orders_v2_is_built_compared_switched_rolled_back_and_retired(
    kafka: Kafka, prefix: str, workers: list[Worker], producer: AIOKafkaProducer,
    http: aiohttp.ClientSession,
) -> None:
    old_orders = [f"evo-old-{n}" for n in range(6)]
    for order_id in old_orders:
        topic, key, value = v1_order_placed(prefix, order_id)
        await producer.send_and_wait(topic, value, key)
    tokens = {}
    for n in range(12):
        answer = await place(http, workers[n % 2], f"evo-{n}",
                             **({"channel": "mobile"} if n % 3 == 0 else {}))
        tokens[f"evo-{n}"] = answer["token"]

    traffic_stop = asyncio.Event()

    async def live_traffic() -> int:
        """Orders placed on the first worker all along (the second one is killed a while)."""
        sent = 0
        while not traffic_stop.is_set():
            body = {"command_id": str(uuid4()), "type": "PlaceOrder",
                    "aggregate_id": f"evo-live-{sent}",
                    "payload": {"customer_id": "cust-evo", "channel": "store",
                                "lines": [{"sku": "evo-sku", "quantity": 1}]}}
            async with http.post(f"{workers[0].url}/commands", json=body) as response:
                answer = await response.json()
                # 202: its result came late; 503: its result's owner is the killed worker
                assert response.status in (200, 202, 503), answer
            if response.status == 200:
                tokens[f"evo-live-{sent}"] = answer["token"]
            sent += 1
        return sent

    for n in range(BULK):  # a longer log, so that the rebuild takes a while to read
        await producer.send(*product_registered(prefix, f"evo-bulk-{n}"))
    await producer.flush()
    traffic = asyncio.create_task(live_traffic())
    code, output = await views(kafka, prefix, workers[0], "rebuild", "orders", "--version", "2")
    assert code == 0, output
    assert "building" in output

    children: dict[str, int] = {}  # a worker's name -> the last process seen building for it
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # no pause: kill right after its first batch
        for worker in workers:
            here = (await local(http, worker))["built_here"].get("orders-v2")
            if here and here["apart"]:
                children[worker.name] = here["apart"]["pid"]
        building = (await local(http, workers[1]))["built_here"].get("orders-v2")
        if building and building["folded"]:
            break
    # The log is far longer than APART_FROM: the first batch came from a process of its own.
    assert building["folded_apart"] > 0, building
    assert workers[1].process is not None and workers[0].process is not None
    assert children.get(workers[1].name, 0) not in (0, workers[1].process.pid), children
    workers[1].kill()
    child = children[workers[1].name]
    print(f"SIGKILL of {workers[1].name} once it had folded {building} of a log of about "
          f"{BULK + 30} records (building in process {child})")
    if workers[0].name in children:  # the other worker's child is killed too: restarted
        with contextlib.suppress(ProcessLookupError):
            os.kill(children[workers[0].name], signal.SIGKILL)
    workers[1].start()
    await until(lambda: gone(child))  # the child of a killed worker stops by itself
    await wait_until_all_ready(workers)

    await until_ready(http, workers[0], "orders", 2)
    assert traffic.done() is False  # v2 caught up while commands kept coming

    async def handed_back() -> bool:  # near the log's end the workers fold v2 themselves
        return all([(await local(http, worker))["built_here"]["orders-v2"]["apart"] is None
                    for worker in workers])

    await until(handed_back)

    # Under live traffic: each new order's confirmation lands in v1 and v2 at different
    # moments, so the two are compared at equal positions of the log, never as read.
    code, output = await views(kafka, prefix, workers[0], "compare", "orders", "1", "2",
                               "--wait", "300")
    assert code == 0, output
    assert " 0 unexpected differences" in output
    assert traffic.done() is False
    traffic_stop.set()
    live_sent = await traffic
    assert live_sent > 0

    urls = tuple(worker.url for worker in workers)
    readers = Readers(http, workers, tokens)
    code, output = await readers.run_while(
        views(kafka, prefix, workers[0], "switch", "orders", "2", urls=urls))
    assert code == 0, output
    assert "served by 2 worker(s) asked within" in output
    assert not [s for s in readers.statuses if s >= 500], readers.statuses
    assert readers.backwards == []
    for worker in workers:
        here = await local(http, worker)
        assert here["live_here"]["orders"] == 2
        print(f"switch to v2: {output.strip()}; on {worker.name}: {here['switches'][-1]}")

    status, body = await get_json(http, f"{workers[1].url}/views/orders/{old_orders[0]}")
    assert status == 200 and body["meta"]["view_version"] == 2, body
    assert body["data"]["channel"] == "web"  # v1 events on the log, upcast, in the new view
    status, body = await get_json(http, f"{workers[0].url}/views/orders/evo-0")
    assert body["data"]["channel"] == "mobile"

    code, output = await views(kafka, prefix, workers[0], "retire", "orders", "2", urls=urls)
    assert code == 2 and "is live" in output, output

    status_before = await plant_difference(kafka, prefix, workers, "evo-1")
    code, output = await views(kafka, prefix, workers[0], "compare", "orders", "1", "2",
                               "--wait", "300")
    assert code == 1, output
    assert f"evo-1: status: v1 '{status_before}', v2 'shipped'" in output, output
    assert " 1 unexpected differences" in output

    readers = Readers(http, workers, tokens)
    code, output = await readers.run_while(
        views(kafka, prefix, workers[0], "switch", "orders", "1", urls=urls))
    assert code == 0, output
    assert not [s for s in readers.statuses if s >= 500]
    assert readers.backwards == []
    status, body = await get_json(http, f"{workers[1].url}/views/orders/{old_orders[0]}")
    assert body["meta"]["view_version"] == 1 and "channel" not in body["data"]

    async with http.post(f"{workers[0].url}/admin/views/orders/retire?version=2") as response:
        assert response.status == 401  # worker-1 has an admin token; this request carries none
        assert "SHOPSTREAM_ADMIN_TOKEN" in (await response.json())["error"]
    async with http.get(f"{workers[0].url}/metrics") as response:
        assert 'shopstream_view_live_version{view="orders"} 1.0' in await response.text()

    code, output = await views(kafka, prefix, workers[0], "retire", "orders", "2", urls=urls)
    assert code == 0, output
    assert f"{prefix}.view-orders-v2-changelog" not in await topic_names(kafka)
    for worker in workers:
        assert "orders-v2" not in (await local(http, worker))["built_here"]
    code, output = await views(kafka, prefix, workers[0], "list")
    assert "orders v2  retired" in output and "orders v1  live" in output, output


async def plant_difference(kafka: Kafka, prefix: str, workers: list[Worker],
                           order_id: str) -> str:
    """Write a row into v2's changelog as a projector folding one event wrongly would."""
    async with aiohttp.ClientSession() as http:
        status, body = await get_json(http, f"{workers[0].url}/views/orders/{order_id}")
    assert status == 200
    row = {"data": {**body["data"], "status": "shipped"}, "versions": body["meta"]["versions"],
           "occurred_at": body["meta"]["occurred_at"]}
    topic = f"{prefix}.view-orders-v2-changelog"
    client = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await client.start()
    try:
        partitions = sorted(await client.partitions_for(f"{prefix}.events"))
        await client.send_and_wait(topic, orjson.dumps(row), order_id.encode(),
                                   partition=owning_partition(order_id, len(partitions)))
    finally:
        await client.stop()
    return str(body["data"]["status"])


async def topic_names(kafka: Kafka) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def test_what_cannot_be_built_or_retired_is_refused_with_the_reason(
    kafka: Kafka, prefix: str, workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    declared = "tests.integration.repartitioned_v2"
    code, output = await views(kafka, prefix, workers[0], "switch", "customer-orders", "2",
                               module=declared)
    assert code == 2, output
    assert "customer-orders-v2 is declared: run `views rebuild" in output, output

    code, output = await views(kafka, prefix, workers[0], "retire", "orders", "1")
    assert code == 2, output
    assert "refused: orders-v1 is the resident version: its Faust tables" in output, output
    async with http.post(f"{workers[0].url}/admin/views/orders/retire?version=1",
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as response:
        body = await response.json()
    assert response.status == 409, body
    assert "orders-v1 is the resident version" in body["error"], body
    assert (await local(http, workers[0]))["live_here"]["orders"] == 1  # nothing changed


async def test_an_event_newer_than_the_code_is_dead_lettered_naming_its_version(
    kafka: Kafka, prefix: str, workers: list[Worker], producer: AIOKafkaProducer,
) -> None:
    topic, key, value = v1_order_placed(prefix, f"evo-future-{uuid4().hex[:6]}")
    future = {**orjson.loads(value), "schema_version": 3}
    sent = await producer.send_and_wait(topic, orjson.dumps(future), key)
    consumer = AIOKafkaConsumer(f"{prefix}.dead-letters", bootstrap_servers=kafka.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        async with asyncio.timeout(WAIT):
            async for record in consumer:
                letter = orjson.loads(record.value)
                if (letter.get("source_topic") == topic
                        and letter.get("source_offset") == sent.offset
                        and letter.get("source_partition") == sent.partition):
                    break
    finally:
        await consumer.stop()
    assert "OrderPlaced schema_version 3 is newer than this code knows (up to 2)" in letter[
        "error"]
