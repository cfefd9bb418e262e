"""A worker that died between appending a batch's events and storing its states leaves
events on the log that its successor's restored states lack. The successor reads the log
back before deciding: it neither decides a second event at a version already taken, nor
applies a command twice whose event is on the log."""

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.envelopes import encode, parse_command, stamp
from streams.events import StockAdded
from streams.partitioning import owning_partition
from tests.integration.cluster import Kafka, Results, Worker, wait_until_all_ready

pytestmark = pytest.mark.integration
PARTITIONS = 4


def restock(sku: str, quantity: int) -> dict[str, object]:
    return {"command_id": str(uuid4()), "type": "Restock", "aggregate_id": sku,
            "payload": {"quantity": quantity}}


async def versions_on_log(bootstrap: str, topic: str, sku: str) -> list[tuple[int, str]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        found: list[tuple[int, str]] = []
        while batch := await consumer.getmany(timeout_ms=2000):
            for records in batch.values():
                found += [(event["version"], event["command_id"]) for event in
                          (orjson.loads(record.value) for record in records)
                          if event["aggregate_id"] == sku]
        return sorted(found)
    finally:
        await consumer.stop()


async def test_the_next_owner_folds_the_events_a_dead_worker_left_before_deciding(
    kafka: Kafka, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    prefix = f"catch-up-{uuid4().hex[:8]}"
    worker = Worker(name="first", bootstrap=kafka.bootstrap, prefix=prefix,
                    data_dir=tmp_path / "first", partitions=PARTITIONS)
    worker.start()
    try:
        await wait_until_all_ready([worker])
        register = {"command_id": str(uuid4()), "type": "RegisterProduct",
                    "aggregate_id": "sku-1", "payload": {"name": "Box", "price": "1.00"}}
        async with http.post(f"{worker.url}/commands", json=register) as response:
            assert response.status == 200, await response.text()
    finally:
        worker.stop()

    # What the dead worker left: two commands not yet committed, and the event it appended
    # for the second of them before it could store the state.
    first, second = restock("sku-1", 7), restock("sku-1", 5)
    partition = owning_partition("sku-1", PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for command in (first, second):
            await producer.send_and_wait(f"{prefix}.commands", orjson.dumps(command),
                                         key=b"sku-1", partition=partition)
        orphan = stamp(parse_command(orjson.dumps(second)), 1, [StockAdded(quantity=5)],
                       datetime.now(UTC))[0]
        await producer.send_and_wait(f"{prefix}.events", encode(orphan), key=b"sku-1",
                                     partition=partition)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(f"{prefix}.command-results", bootstrap_servers=kafka.bootstrap,
                                auto_offset_reset="earliest")
    await consumer.start()
    results = Results(consumer)
    results.start()
    successor = Worker(name="successor", bootstrap=kafka.bootstrap, prefix=prefix,
                       data_dir=tmp_path / "first", partitions=PARTITIONS)
    logged_before = len(successor.log_path.read_text(errors="replace").splitlines())
    successor.start()
    try:
        await wait_until_all_ready([successor])
        # Read back as the partitions were assigned, before the worker was ready, not by the
        # first batch of each commands partition with the commands behind it waiting.
        lines = successor.log_path.read_text(errors="replace").splitlines()[logged_before:]
        read = [n for n, line in enumerate(lines) if "read the event log back" in line]
        ready = [n for n, line in enumerate(lines) if "Worker ready" in line]
        assert read and ready and read[0] < ready[0], "\n".join(lines[-80:])
        assert f"{partition}: '" in lines[read[0]], lines[read[0]]
        first_result = await results.wait_for(str(first["command_id"]))
        second_result = await results.wait_for(str(second["command_id"]))
        assert (second_result["status"], second_result["version"]) == ("accepted", 2)
        assert (first_result["status"], first_result["version"]) == ("accepted", 3)
        assert await versions_on_log(kafka.bootstrap, f"{prefix}.events", "sku-1") == [
            (1, register["command_id"]), (2, second["command_id"]), (3, first["command_id"])]
        url = f"{successor.url}/views/products/sku-1?min_version=3&timeout=30"
        async with http.get(url) as response:
            product = (await response.json())["data"]
        assert (product["on_hand"], product["version"]) == (12, 3), product
    finally:
        successor.stop()
        await results.stop()
