"""A built version made resident by a rolling deploy, on the real broker: orders v2 is built
and switched to, then the workers are redeployed one at a time with v2 as the module's VIEW
while orders keep coming and readers holding tokens keep reading from the workers that are
up. For a while one worker runs the old deploy (v1 resident, v2 built) beside one running
the new (v2 resident). Nothing needs every worker stopped: every read is answered by a
worker that is up (a 503 while the key's owner restarts, then the row), no row goes back for a
reader, every order reads the same from both workers at the end, `verify` agrees
and v1 can be retired."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.integration.cluster import Kafka, Worker, get_json, own_pair, wait_until_all_ready
from tests.integration.test_evolution import until, views
from tests.integration.test_promote import (
    RESIDENT_V2,
    SKU,
    built_and_switched,
    command,
    committed,
    place,
    settled_rows,
)

pytestmark = pytest.mark.integration
PARTITIONS = 4
PATIENCE = 60.0  # seconds a client asks again after a 503


@pytest.fixture
async def pair(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory,
               ) -> AsyncIterator[list[Worker]]:
    async with own_pair(kafka, tmp_path_factory.mktemp("rolling"), "rolling",
                        partitions=PARTITIONS) as started:
        yield started


class Traffic:
    """Orders placed through the workers that are up, each read back from every worker that is
    up with the token of its last write, as a client would: a 503 ("retry shortly") is asked
    again, for up to `PATIENCE` s. The reads no worker answered below 500 in that time, the
    longest wait, any other 5xx, and any row whose version went back for a reader."""

    def __init__(self, http: aiohttp.ClientSession, workers: list[Worker]) -> None:
        self.http = http
        self.up = list(workers)
        self.tokens: dict[str, str] = {}
        self.seen: dict[tuple[str, str], int] = {}
        self.unanswered: list[tuple[str, list[int]]] = []
        self.errors: list[tuple[str, int]] = []
        self.longest_wait = 0.0
        self.backwards: list[str] = []
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            worker = self.up[n % len(self.up)]
            order_id = f"roll-{n}"
            self.tokens[order_id] = await place(
                self.http, worker, order_id, n,
                asked=lambda sender=worker: sender if sender in self.up else self.up[0])
            n += 1
            for key, token in list(self.tokens.items())[-8:]:
                read = [await self.read(reader, key, token) for reader in list(self.up)]
                statuses = [status for status in read if status is not None]
                if statuses and all(status >= 500 for status in statuses):
                    self.unanswered.append((key, statuses))

    async def read(self, worker: Worker, key: str, token: str) -> int | None:
        """The status a client got from `worker`; None if it was taken down meanwhile."""
        began = time.monotonic()
        while True:
            if worker not in self.up:
                return None
            status, body = await get_json(self.http,
                                          f"{worker.url}/views/orders/{key}?token={token}")
            if status != 503 or time.monotonic() - began > PATIENCE:
                break
            await asyncio.sleep(0.5)
        self.longest_wait = max(self.longest_wait, time.monotonic() - began)
        if status >= 500 and status != 503:
            self.errors.append((key, status))
        if status != 200:
            return status
        version = int(body["data"]["version"])
        if version < self.seen.get((worker.name, key), 0):
            self.backwards.append(f"{worker.name} {key}: {self.seen[worker.name, key]} "
                                  f"then {version}")
        self.seen[worker.name, key] = version
        return status

    async def redeploy(self, worker: Worker, others: list[Worker]) -> None:
        """Take `worker` out of the traffic, restart it with v2 resident, and put it back once
        it and the others are ready."""
        self.up.remove(worker)
        await asyncio.sleep(1)  # requests already sent to it finish
        worker.stop()
        worker.module = RESIDENT_V2
        worker.start()
        await wait_until_all_ready([worker, *others])
        self.up.append(worker)
        await asyncio.sleep(10)  # old and new deploys side by side, under traffic


async def test_a_rolling_deploy_makes_orders_v2_resident_one_worker_at_a_time(
    kafka: Kafka, pair: list[Worker], http: aiohttp.ClientSession,
) -> None:
    prefix = pair[0].prefix
    urls = tuple(worker.url for worker in pair)
    await command(http, pair[0], "RegisterProduct", SKU, name="Promo", price="2.50", stock=5000)
    early = [f"roll-early-{n}" for n in range(16)]
    for n, order_id in enumerate(early):
        await place(http, pair[n % 2], order_id, n)
    await built_and_switched(kafka, pair, "orders")

    traffic = Traffic(http, pair)
    running = asyncio.create_task(traffic.run())
    try:
        await asyncio.sleep(5)
        await traffic.redeploy(pair[1], [pair[0]])
        await traffic.redeploy(pair[0], [pair[1]])
    finally:
        traffic.stopping.set()
        await running
    assert traffic.backwards == []
    assert traffic.unanswered == [], traffic.longest_wait
    assert traffic.errors == []
    assert len(traffic.tokens) > 20, len(traffic.tokens)

    ids = early + list(traffic.tokens)
    rows: list[dict[str, Any]] = []
    for worker in pair:
        rows.append(await settled_rows(http, worker, ids))
    for order_id in ids:
        assert rows[0][order_id]["data"] == rows[1][order_id]["data"], order_id
        assert rows[0][order_id]["meta"]["view_version"] == 2
    for partition, offset in (await committed(kafka, f"{prefix}.view-orders-v2",
                                              f"{prefix}.events")).items():
        assert offset.metadata == "resident", (partition, offset)

    code, output = await views(kafka, prefix, pair[0], urls=urls, module=RESIDENT_V2,
                               command="verify")
    assert code == 0, output[-3000:]
    code, output = await views(kafka, prefix, pair[0], "retire", "orders", "1", urls=urls,
                               module=RESIDENT_V2)
    assert code == 0, output

    async def v1_files_gone() -> bool:
        return not [path for worker in pair for path in worker.data_dir.rglob("orders-v1-*")]

    await until(v1_files_gone)
