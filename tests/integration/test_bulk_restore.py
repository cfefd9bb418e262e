"""Bulk restore: a worker whose state is wiped gets every row of every table back from the
changelogs, answering 503 on /ready until it has, and shows the restore in its log and /metrics."""

import shutil
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest
from faust.types import TP
from rocksdict import AccessType, Rdict

from bench.pipeline_tools import (
    end_offsets,
    event,
    product,
    send_all,
    started_producer,
    wait_folded,
)
from bench.recovery import FAUST_OFFSET_KEY, gauge
from streams.faust_patches import partition_items
from streams.restore import progress, restore
from tests.integration.cluster import Kafka, Worker, wait_until_all_ready
from tests.integration.test_ready import readiness_until_ready
from tests.unit.test_store import StoreIn

pytestmark = pytest.mark.integration

DIRECT_ROWS = 3000
THRESHOLD = 500  # below the products changelog's ~750 records per partition, above the others'


def table_rows(data_dir: Path) -> dict[str, dict[bytes, bytes]]:
    """Every row of every table database of a stopped worker, by database, without Faust's
    offset record."""
    found = {}
    for path in sorted(data_dir.rglob("*.db")):
        database = Rdict(str(path), access_type=AccessType.read_only())
        try:
            found[path.name] = {key: value for key, value in database.items()
                                if key != FAUST_OFFSET_KEY}
        finally:
            database.close()
    return found


async def command(http: aiohttp.ClientSession, worker: Worker, kind: str, aggregate: str,
                  payload: dict[str, object]) -> str:
    body = {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate,
            "payload": payload}
    async with http.post(f"{worker.url}/commands", json=body) as response:
        answer = await response.json()
        assert response.status == 200 and answer["status"] == "accepted", answer
        return str(answer["token"])


async def test_a_wiped_worker_gets_every_row_back_through_the_bulk_restore(
    kafka: Kafka, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    prefix = f"bulk-{uuid4().hex[:8]}"
    worker = Worker(name="wiped", bootstrap=kafka.bootstrap, prefix=prefix,
                    data_dir=tmp_path / "wiped", settings={"BULK_RESTORE_FROM": str(THRESHOLD)})
    worker.start()
    try:
        await wait_until_all_ready([worker])
        for n in range(10):
            await command(http, worker, "RegisterProduct", f"sku-{n}",
                          {"name": "Mug", "price": "4.50", "stock": 10})
        for n in range(10):
            token = await command(http, worker, "PlaceOrder", f"order-{n}", {
                "customer_id": f"cust-{n % 3}", "lines": [{"sku": f"sku-{n}", "quantity": 2}]})
            async with http.get(f"{worker.url}/views/orders/order-{n}?token={token}") as response:
                assert response.status == 200, await response.text()
        for n in range(10):  # the saga settles every order before the tables are compared
            url = f"{worker.url}/views/orders/order-{n}?min_version=2&timeout=30"
            async with http.get(url) as response:
                body = await response.json()
                assert body["data"]["status"] == "confirmed", body
        producer = await started_producer(kafka.bootstrap)
        try:
            await send_all(producer, f"{prefix}.events", (
                (f"direct-{n}", event("ProductRegistered", f"direct-{n}", 1,
                                      product(f"direct-{n}"))) for n in range(DIRECT_ROWS)))
        finally:
            await producer.stop()
        ends = await end_offsets(kafka.bootstrap, f"{prefix}.events")
        assert await wait_folded(http, [worker.url], "products", ends, 600) is not None
        worker.stop()
        before = table_rows(worker.data_dir)
        assert sum(len(rows) for rows in before.values()) > DIRECT_ROWS

        shutil.rmtree(worker.data_dir)
        worker.start()
        answers = await readiness_until_ready(http, worker, timeout=600)
        assert answers[-1] == 200 and 503 in answers
        async with http.get(f"{worker.url}/metrics") as response:
            metrics = await response.text()
        assert (gauge(metrics, "shopstream_restore_rows") or 0) >= DIRECT_ROWS
        assert gauge(metrics, "shopstream_restore_remaining_records") == 0
        async with http.get(f"{worker.url}/views/orders/order-7") as response:
            assert response.status == 200 and (await response.json())["data"]["total"] == "9.00"
        worker.stop()
        assert [line for line in worker.log_tail(5000).splitlines()
                if "bulk restore:" in line and "changelog partitions in" in line]
        after = table_rows(worker.data_dir)
        assert sorted(after) == sorted(before)
        for name, rows in before.items():
            assert after[name] == rows, name
    finally:
        worker.stop()


async def changelog_with(kafka: Kafka, rows: int) -> str:
    topic = f"bulk-changelog-{uuid4().hex[:8]}"
    await kafka.create_topic(topic)
    producer = await started_producer(kafka.bootstrap)
    try:
        for n in range(rows):
            await producer.send(topic, b'{"version": 1}', key=f"k{n}".encode(), partition=0)
        await producer.send_and_wait(topic, None, key=b"k0", partition=0)  # a tombstone
    finally:
        await producer.stop()
    return topic


@pytest.fixture
def restore_settings(kafka: Kafka, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_BROKER", f"kafka://{kafka.bootstrap}")
    monkeypatch.setenv("SHOPSTREAM_BULK_RESTORE_FROM", "1")


async def test_a_restore_whose_rebalance_is_over_writes_nothing_more(
    kafka: Kafka, tmp_path: Path, restore_settings: None,
) -> None:
    topic = await changelog_with(kafka, 500)
    store = StoreIn(tmp_path / "stale")
    tp = TP(topic, 0)
    answers = iter([True])  # current while planning, over once the first fetch is in
    await restore({tp: store}, lambda: next(answers, False))
    assert store.persisted_offset(tp) is None
    assert list(partition_items(store, 0, b"")) == []


async def test_a_restore_brings_a_partition_to_its_changelogs_end_and_then_has_nothing_to_do(
    kafka: Kafka, tmp_path: Path, restore_settings: None,
) -> None:
    topic = await changelog_with(kafka, 500)
    store = StoreIn(tmp_path / "current")
    tp = TP(topic, 0)
    await restore({tp: store}, lambda: True)
    assert store.persisted_offset(tp) == 500
    keys = {key for key, _ in partition_items(store, 0, b"")}
    assert len(keys) == 499 and b"k0" not in keys
    assert progress.done == 501 and not progress.running
    await restore({tp: store}, lambda: True)
    assert progress.done == 501  # no second restore began: nothing was behind
