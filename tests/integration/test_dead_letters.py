"""Poison messages on every topic: each is parked once with its origin, and nothing stops."""

import asyncio
import base64
import os
import sys
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ops.verify import read_topic
from tests.integration.cluster import ROOT, Kafka, Worker, get_json

pytestmark = pytest.mark.integration

TOPICS = ("commands", "events", "command-results", "reservation-saga",
          "customer-orders-v1-repartition", "sales-v1-repartition")
GARBAGE = [b"\xff\xfe\xfd", b"not json", b"[1,2]", b'{"type":"PlaceOrder"}', b"{}"]


async def dead_letters_for(kafka: Kafka, prefix: str, origins: set[tuple[str, int, int]],
                           timeout: float = 60) -> list[dict[str, Any]]:
    """The dead letters whose origins are among `origins`, once every origin has one."""
    consumer = AIOKafkaConsumer(f"{prefix}.dead-letters", bootstrap_servers=kafka.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        async def collect() -> None:
            async for record in consumer:
                letter = orjson.loads(record.value)
                if "resolved" in letter:
                    continue  # a replayed or discarded letter's marker
                origin = (letter["source_topic"], letter["source_partition"],
                          letter["source_offset"])
                if origin in origins:
                    found.append(letter)
                if {(f["source_topic"], f["source_partition"], f["source_offset"])
                        for f in found} == origins:
                    return
        await asyncio.wait_for(collect(), timeout)
    finally:
        await consumer.stop()
    return found


async def test_poison_on_every_topic_is_parked_once_with_its_origin(
    workers: list[Worker], kafka: Kafka, producer: AIOKafkaProducer, prefix: str,
    http: aiohttp.ClientSession,
) -> None:
    origins: dict[tuple[str, int, int], bytes] = {}
    for topic in TOPICS:
        for partition in range(4):
            for value in GARBAGE:
                sent = await producer.send_and_wait(f"{prefix}.{topic}", value, key=b"junk",
                                                    partition=partition)
                origins[(sent.topic, sent.partition, sent.offset)] = value
    letters = await dead_letters_for(kafka, prefix, set(origins))
    ids = {letter["dead_letter_id"] for letter in letters}
    assert len(ids) == len(origins) == len(TOPICS) * 4 * len(GARBAGE)
    for letter in letters:
        origin = (letter["source_topic"], letter["source_partition"], letter["source_offset"])
        assert base64.b64decode(letter["value"]) == origins[origin]
        assert base64.b64decode(letter["key"]) == b"junk"
        assert letter["error"] and letter["attempts"] == 1
    assert all(worker.alive() for worker in workers)

    order_id = f"order-{uuid4().hex[:8]}"  # and the workers still work
    body = {"command_id": str(uuid4()), "type": "PlaceOrder", "aggregate_id": order_id,
            "payload": {"customer_id": "c", "lines": [{"sku": "s", "quantity": 1}]}}
    async with http.post(f"{workers[0].url}/commands", json=body) as response:
        assert response.status == 200
    health = await health_when(http, workers, lambda h: h["dead_letters"] >= len(origins))
    assert {h["status"] for h in health} == {"degraded"}

    output = await dlq(kafka, prefix, "list")
    assert sum(line.split()[0] in ids for line in output.splitlines() if line) == len(ids)
    output = await dlq(kafka, prefix, "discard")
    assert f"discarded {len(ids)} dead letters" in output  # garbage cannot be fixed
    assert f"dlq discard: {len(ids)} of {len(ids)} (100 %" in output  # progress, as a line
    health = await health_when(http, workers, lambda h: h["dead_letters"] == 0)
    assert {h["status"] for h in health} == {"ok"}
    assert "0 dead letters waiting" in await dlq(kafka, prefix, "list")


async def dlq(kafka: Kafka, prefix: str, *arguments: str) -> str:
    returncode, output = await cli(kafka, prefix, "dlq", *arguments)
    assert returncode == 0, output
    return output


async def cli(kafka: Kafka, prefix: str, *arguments: str) -> tuple[int | None, str]:
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", *arguments, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SHOPSTREAM_BROKER": f"kafka://{kafka.bootstrap}",
             "SHOPSTREAM_TOPIC_PREFIX": prefix})
    output = (await asyncio.wait_for(run.communicate(), 120))[0].decode()
    return run.returncode, output


async def test_the_tools_on_a_prefix_no_worker_has_used_say_so_without_a_traceback(
    kafka: Kafka,
) -> None:
    unused = f"unused-{uuid4().hex[:8]}"
    assert "0 dead letters waiting, 0 in all" in await dlq(kafka, unused, "list")
    returncode, output = await cli(kafka, unused, "verify", "--quiet")
    assert returncode == 2
    assert f"error: topic {unused}.events does not exist" in output
    assert "Traceback" not in output


async def health_when(http: aiohttp.ClientSession, workers: list[Worker],
                      condition: Callable[[dict[str, Any]], bool],
                      timeout: float = 60) -> list[dict[str, Any]]:
    """Every worker's /health, once it meets `condition` on all of them."""
    deadline = time.monotonic() + timeout
    while True:
        health = [(await get_json(http, f"{worker.url}/health"))[1] for worker in workers]
        if all(condition(h) for h in health) or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.2)


async def test_a_parked_event_replayed_once_its_cause_is_fixed_applies_once(
    workers: list[Worker], kafka: Kafka, producer: AIOKafkaProducer, prefix: str,
    http: aiohttp.ClientSession,
) -> None:
    order_id = f"order-{uuid4().hex[:8]}"

    def event(version: int, kind: str, payload: dict[str, Any]) -> bytes:
        return orjson.dumps({
            "event_id": str(uuid4()), "type": kind, "aggregate_id": order_id,
            "version": version, "command_id": str(uuid4()), "correlation_id": str(uuid4()),
            "occurred_at": "2026-11-23T12:00:00Z", "payload": {"customer_id": "c", **payload}})

    topic = f"{prefix}.events"
    cancelled = await producer.send_and_wait(topic, event(2, "OrderCancelled", {"reason": "x"}),
                                             key=order_id.encode())
    [letter, *_] = await dead_letters_for(
        kafka, prefix, {(cancelled.topic, cancelled.partition, cancelled.offset)})
    assert "before OrderPlaced" in letter["error"]
    await producer.send_and_wait(topic, event(1, "OrderPlaced", {"lines": [
        {"sku": "s", "quantity": 1}]}), key=order_id.encode())  # the cause, fixed

    cancel = base64.b64decode(letter["value"])
    for replays, quiet in ((1, []), (2, ["--quiet"])):  # replaying twice changes nothing
        output = await dlq(kafka, prefix, "replay", "--id", letter["dead_letter_id"], *quiet)
        assert "replayed 1 dead letters" in output, output
        assert ("dlq replay: 1 of 1" in output) is not bool(quiet), output
        copies = [r for r in await read_topic(kafka.bootstrap, topic) if r.value == cancel]
        assert len(copies) == 1 + replays  # the parked original, and each replay
        body = await folded_past(http, workers[1], order_id, copies[-1].partition,
                                 copies[-1].offset)
        assert (body["data"]["status"], body["meta"]["versions"]) == ("cancelled", {order_id: 2})


async def folded_past(http: aiohttp.ClientSession, worker: Worker, order_id: str,
                      partition: int, offset: int, timeout: float = 60) -> Any:
    """The order's row once the orders view has folded the event log up to `offset`."""
    url = f"{worker.url}/views/orders/{order_id}"
    deadline = time.monotonic() + timeout
    while True:
        status, body = await get_json(http, url)
        applied = body.get("meta", {}).get("applied", {}).get(str(partition), -1)
        if status == 200 and applied >= offset:
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)
