"""Readiness: a worker restoring its tables from the changelogs answers 503, then 200."""

import asyncio
import shutil
import time
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest

from ops.verify import partitions_of
from tests.integration.cluster import Kafka, Worker, wait_until_all_ready
from tests.integration.conftest import PARTITIONS

pytestmark = pytest.mark.integration


async def readiness_until_ready(http: aiohttp.ClientSession, worker: Worker,
                                timeout: float = 120) -> list[int]:
    """Every /ready status the worker answered, polled from its start until the first 200."""
    answers: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and 200 not in answers:
        assert worker.alive(), worker.log_tail()
        try:
            async with http.get(f"{worker.url}/ready") as response:
                answers.append(response.status)
        except aiohttp.ClientConnectionError:
            pass  # the web server is not up yet
        await asyncio.sleep(0.05)
    return answers


async def test_ready_is_503_while_recovering_and_200_after(
    kafka: Kafka, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    worker = Worker(name="lonely", bootstrap=kafka.bootstrap, prefix=f"ready-{uuid4().hex[:8]}",
                    data_dir=tmp_path / "lonely")
    worker.start()
    try:
        await wait_until_all_ready([worker])
        for n in range(30):
            body = {"command_id": str(uuid4()), "type": "RegisterProduct",
                    "aggregate_id": f"sku-{n}", "payload": {"name": "Box", "price": "1.00"}}
            async with http.post(f"{worker.url}/commands", json=body) as response:
                assert response.status == 200
                token = (await response.json())["token"]
            async with http.get(f"{worker.url}/views/products/sku-{n}?token={token}") as response:
                assert response.status == 200, await response.text()
        worker.stop()
        shutil.rmtree(worker.data_dir)
        worker.start()
        answers = await readiness_until_ready(http, worker)
        assert answers[-1] == 200 and 503 in answers
        for n in range(30):
            async with http.get(f"{worker.url}/views/products/sku-{n}") as response:
                assert response.status == 200, await response.text()
    finally:
        worker.stop()


async def test_a_started_worker_has_declared_the_topics_it_writes_but_never_reads(
    workers: list[Worker], kafka: Kafka, prefix: str,
) -> None:
    """Faust declares only the topics an agent reads; left to a producer, the command
    results and dead letters would get the broker's default partition count."""
    for name in ("command-results", "dead-letters", "view-aliases"):
        partitions = await partitions_of(kafka.bootstrap, f"{prefix}.{name}")
        assert len(partitions) == (1 if name == "view-aliases" else PARTITIONS), name
