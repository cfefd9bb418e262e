"""The outbox tests' parts: the relay as a real process, concurrent writers of a PostgreSQL
outbox (some committing out of id order, some rolling back), and a timed results reader."""

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer

from tests.integration.cluster import ROOT


@dataclass
class RelayProcess:
    dsn: str
    bootstrap: str
    prefix: str
    log_path: Path
    table: str = "outbox"
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        env = {**os.environ, "SHOPSTREAM_BROKER": f"kafka://{self.bootstrap}",
               "SHOPSTREAM_TOPIC_PREFIX": self.prefix, "SHOPSTREAM_PARTITIONS": "4"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams", "outbox", "--dsn", self.dsn, "--table", self.table,
             "--batch", "200", "--poll", "0.05", *self.extra],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class TimedRecords:
    """Commands or command results by command id, each with the time it was produced."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                         auto_offset_reset="earliest", enable_auto_commit=False)
        self.by_command: dict[str, list[tuple[float, dict[str, object]]]] = {}
        self.arrived = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None
        self.missing: set[str] = set()

    def expect(self, command_ids: set[str]) -> None:
        """Track which of these have no result yet, in `missing`."""
        self.missing = command_ids - self.by_command.keys()

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()

    async def _collect(self) -> None:
        async for record in self.consumer:
            try:
                result = orjson.loads(record.value)
                command_id = str(result["command_id"])
            except (orjson.JSONDecodeError, TypeError, KeyError):
                continue
            async with self.arrived:
                self.by_command.setdefault(command_id, []).append(
                    (record.timestamp / 1000, result))
                self.missing.discard(command_id)
                self.arrived.notify_all()

    def count(self, ids: set[str]) -> int:
        return sum(1 for command_id in ids if command_id in self.by_command)

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(condition), timeout)


@dataclass
class Written:
    """What the writers committed, in commit order per aggregate, and what they rolled back."""

    committed: dict[str, tuple[int, str, float]] = field(default_factory=dict)
    """command id -> (seq, aggregate id, committed at)"""
    rolled_back: set[str] = field(default_factory=set)
    out_of_order: int = 0
    seconds: float = 0.0

    def per_aggregate(self) -> dict[str, list[str]]:
        found: dict[str, list[tuple[int, str]]] = {}
        for command_id, (seq, sku, _) in self.committed.items():
            found.setdefault(sku, []).append((seq, command_id))
        return {sku: [command_id for _, command_id in sorted(rows)]
                for sku, rows in found.items()}


INSERT = ("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
          "VALUES (%s, 'product', %s, %s, %s) RETURNING seq")


async def insert(conn: psycopg.AsyncConnection, sku: str, kind: str,
                 payload: dict[str, object]) -> tuple[str, int]:
    row_id = str(uuid4())
    cursor = await conn.execute(INSERT, (row_id, sku, kind, orjson.dumps(payload).decode()))
    found = await cursor.fetchone()
    assert found is not None
    return row_id, int(found[0])


async def register(dsn: str, skus: list[str], written: Written) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        async with conn.transaction():
            rows = [(sku, await insert(conn, sku, "RegisterProduct",
                                       {"name": sku, "price": "1.00", "stock": 0}))
                    for sku in skus]
        at = time.time()
    for sku, (row_id, seq) in rows:
        written.committed[row_id] = (seq, sku, at)


async def writer(dsn: str, skus: list[str], own_sku: str, rows: int, written: Written,
                 rng: random.Random) -> None:
    """Transactions of 1-3 restocks of one product, each holding that product's lock (as an
    update of the product's own row would); one in five waits while another transaction,
    begun later, commits first; one in ten rolls back."""
    async with (await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as other):
        done = 0
        while done < rows:
            sku = rng.choice(skus)
            mine: list[tuple[str, int]] = []
            rollback = rng.random() < 0.1
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (sku,))
                    for _ in range(rng.randint(1, 3)):
                        mine.append(await insert(conn, sku, "Restock", {"quantity": 1}))
                    if rng.random() < 0.2:
                        done += await overtake(other, own_sku, written)
                    if rollback:
                        raise psycopg.Rollback()
            finally:
                at = time.time()
            if rollback:
                written.rolled_back.update(row_id for row_id, _ in mine)
                continue
            for row_id, seq in mine:
                written.committed[row_id] = (seq, sku, at)
            done += len(mine)


async def overtake(conn: psycopg.AsyncConnection, sku: str, written: Written) -> int:
    """A whole transaction, begun after the caller's and committed before it."""
    async with conn.transaction():
        row_id, seq = await insert(conn, sku, "Restock", {"quantity": 1})
    written.committed[row_id] = (seq, sku, time.time())
    written.out_of_order += 1
    return 1


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
