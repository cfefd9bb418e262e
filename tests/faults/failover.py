"""`python -m tests.faults.failover`: seconds until a killed worker's rows are served again,
with and without a standby replica of each table partition."""

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from uuid import uuid4

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from tests.faults.harness import Run, Scenario, until
from tests.integration.cluster import ROOT, Worker, get_json

WARM_SECONDS = 10.0
"""After the views caught up: time for the standbys to read the changelogs' last records."""


async def register_products(bootstrap: str, topic: str, count: int) -> list[str]:
    """`count` ProductRegistered events written straight to the event log: a big products view."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    skus = [f"sku-{n:06}" for n in range(count)]
    try:
        for sku in skus:
            await producer.send(topic, key=sku.encode(), value=orjson.dumps({
                "event_id": str(uuid4()), "type": "ProductRegistered", "aggregate_id": sku,
                "version": 1, "command_id": str(uuid4()), "correlation_id": str(uuid4()),
                "occurred_at": "2026-11-23T12:00:00Z",
                "payload": {"name": sku, "price": "1.00", "stock": 1}}))
        await producer.flush()
    finally:
        await producer.stop()
    return skus


async def served_by(http: aiohttp.ClientSession, worker: Worker, sku: str) -> str | None:
    try:
        status, body = await get_json(http, f"{worker.url}/views/products/{sku}")
    except aiohttp.ClientError:
        return None
    return str(body["meta"]["served_by"]) if status == 200 and body["data"]["version"] == 1 \
        else None


async def owned_by(http: aiohttp.ClientSession, asked: Worker, owner: Worker,
                   skus: list[str]) -> str:
    """The last registered sku that `owner` serves, as `asked` finds out by forwarding."""
    for sku in reversed(skus):
        if await served_by(http, asked, sku) == owner.url:
            return sku
    raise LookupError(f"{owner.name} serves none of the products")


async def measure(standby: int, rows: int, root: Path) -> dict[str, float | int]:
    """Kill -9 one of two workers; time until the survivor rebalances and serves its rows."""
    async def fault(run: Run) -> None:
        return None

    scenario = Scenario(f"failover-standby-{standby}", fault,
                        settings={"STANDBY_REPLICAS": str(standby)})
    async with Run(scenario, root / scenario.name) as run:
        skus = await register_products(run.kafka.bootstrap, f"{run.prefix}.events", rows)
        await run.quiet()
        await asyncio.sleep(WARM_SECONDS)
        survivor, victim = run.workers
        async with aiohttp.ClientSession() as http:
            moved = await owned_by(http, survivor, victim, skus)
            victim.kill()
            killed = time.monotonic()

            async def rebalancing() -> bool:
                status, _ = await get_json(http, f"{survivor.url}/ready")
                return status != 200

            async def serves_moved_row() -> bool:
                return await served_by(http, survivor, moved) == survivor.url

            await until(rebalancing, 300, interval=0.1)
            rebalanced = time.monotonic()
            await until(serves_moved_row, 600, interval=0.1)
            served = time.monotonic()
    return {"standby_replicas": standby, "rows": rows,
            "until_rebalance_s": round(rebalanced - killed, 1),
            "rebalance_to_served_s": round(served - rebalanced, 1),
            "failover_s": round(served - killed, 1)}


async def main(rows: int, out: Path) -> list[dict[str, float | int]]:
    found = [await measure(standby, rows, out) for standby in (0, 1)]
    (out / "failover.json").write_bytes(orjson.dumps(found, option=orjson.OPT_INDENT_2))
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.faults.failover", description=__doc__)
    parser.add_argument("--rows", type=int, default=30_000, help="products in the view")
    parser.add_argument("--out", type=Path,
                        default=ROOT / ".faults" / time.strftime("failover-%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    # Our own clients retry through the faults; their connection errors are expected noise.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    args.out.mkdir(parents=True, exist_ok=True)
    for line in asyncio.run(main(args.rows, args.out)):
        print("  ".join(f"{key} {value}" for key, value in line.items()))
    sys.exit(0)
