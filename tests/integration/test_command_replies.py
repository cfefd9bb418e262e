"""POST /commands that waits is answered from the result record on the worker it came to."""

from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.cluster import Worker

pytestmark = pytest.mark.integration


def register(sku: str) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "type": "RegisterProduct", "aggregate_id": sku,
            "payload": {"name": "Mug", "price": "4.50", "stock": 3}}


async def answers(http: aiohttp.ClientSession, worker: Worker) -> dict[str, float]:
    async with http.get(f"{worker.url}/metrics") as response:
        text = await response.text()
    return {sample.labels["source"]: sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == "shopstream_command_answers_total"}


async def post(http: aiohttp.ClientSession, worker: Worker,
               command: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{worker.url}/commands?timeout=30", json=command) as response:
        return response.status, await response.json()


async def test_every_worker_answers_from_the_result_it_follows(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    for worker in workers:
        for _ in range(8):  # command ids spread over every results partition and owner
            before = await answers(http, worker)
            command = register(f"sku-{uuid4().hex[:8]}")
            status, body = await post(http, worker, command)
            assert (status, body["command_id"], body["status"]) == (
                200, command["command_id"], "accepted")
            after = await answers(http, worker)
            assert after.get("followed", 0) == before.get("followed", 0) + 1, (before, after)


async def test_a_repeated_post_gets_the_first_result_back(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    command = register(f"sku-{uuid4().hex[:8]}")
    first = await post(http, workers[0], command)
    again = await post(http, workers[1], command)
    assert first[0] == again[0] == 200
    assert {**again[1], "token": None} == {**first[1], "token": None}
    assert first[1]["version"] == 1
