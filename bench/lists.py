"""List-query latency: 100-row pages of `GET /views/orders?status=` over N orders on two
workers, and the paged result set checked against a fold of the whole log.

`python -m bench.lists [--orders N]` starts its own Kafka and workers and loads the log:
the commands (20 products, then N orders) go through the pure domain in memory (deciders,
saga, versions: `tests/unit/memory_system.py`), and the events they give are produced straight
to the event log, with the saga's resulting state to its table's changelog so the workers'
saga has nothing left to do. It waits until both workers have folded the whole log, then
follows every status's cursor from the first page to the last (`--rounds` times), alternating
the worker asked, timing each page.
"""

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.pipeline_tools import (
    Cluster,
    command,
    end_offsets,
    iso_now,
    memory,
    percentiles,
    send_all,
    started_producer,
    wait_folded,
)
from ops.verify import read_log
from streams.envelopes import Command, Event, encode
from tables.fold import fold
from tests.integration.cluster import Kafka, free_kafka_port, wait_until_all_ready
from tests.unit.memory_system import MemorySystem

PRODUCTS, CUSTOMERS, CONFIRMED_SHARE, PAGE = 20, 1000, 0.8, 100
RESULTS = Path(__file__).parent / "results"
log = logging.getLogger(__name__)


def orders(count: int, seed: int = 7) -> list[tuple[str, dict[str, Any]]]:
    """The products, with stock for about 80 % of the orders, then the orders."""
    rng = random.Random(seed)
    stock = int(count * CONFIRMED_SHARE / PRODUCTS)
    skus = [f"sku-{n:02d}" for n in range(PRODUCTS)]
    commands = [(sku, command("RegisterProduct", sku, {"name": sku, "price": "2.50",
                                                       "stock": stock})) for sku in skus]
    for n in range(count):
        order = f"order-{n:07d}"
        commands.append((order, command("PlaceOrder", order, {
            "customer_id": f"cust-{rng.randrange(CUSTOMERS):04d}",
            "lines": [{"sku": rng.choice(skus), "quantity": 1}]})))
    return commands


def history(count: int) -> tuple[list[Event], dict[str, bytes]]:
    """The event log the service writes for `orders(count)`, and the saga's state per order
    once it has done its work: what the command handler and the saga would have stored."""
    system = MemorySystem()
    for _, message in orders(count):
        system.submit(Command.model_validate(message))
    return system.log, {order: encode(state) for order, state in system.sagas.items()}


async def seed_saga(cluster: Cluster, states: dict[str, bytes]) -> None:
    """Put the saga's finished states in its table's changelog before the workers start,
    so they recover them and the saga finds nothing to do for the produced events (else it
    would issue every reservation again, through the slow command pipeline). The topic is
    created as Faust would (compacted, the project's partitions); keys and values raw, as the
    project's byte tables store them."""
    topic = f"{cluster.prefix}-reservation-saga-changelog"  # Faust's changelog naming
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, cluster.partitions, 1,
                                            topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    producer = await started_producer(cluster.bootstrap)
    try:
        pending = [await producer.send(topic, state, key=order.encode())
                   for order, state in states.items()]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def settle(cluster: Cluster, http: aiohttp.ClientSession, timeout: float) -> float:
    """Seconds until the orders view has folded the event log and the log stopped growing."""
    started = time.monotonic()
    previous: dict[int, int] = {}
    while time.monotonic() - started < timeout:
        ends = await end_offsets(cluster.bootstrap, cluster.topic("events"))
        if ends == previous:
            return time.monotonic() - started
        waited = await wait_folded(http, cluster.urls, "orders", ends,
                                   timeout - (time.monotonic() - started))
        if waited is None:
            break
        previous = ends
        await asyncio.sleep(3.0)  # the saga's commands may still be on their way
    raise TimeoutError(f"the orders view did not settle within {timeout:.0f} s")


async def page_through(http: aiohttp.ClientSession, urls: list[str],
                       status: str) -> tuple[list[dict[str, Any]], list[float], list[str]]:
    """Every row of `status`, page by page; each page's seconds; and anything wrong seen."""
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    problems: list[str] = []
    cursor: dict[str, str] = {}
    for n in range(10**9):
        url = urls[n % len(urls)]
        started = time.perf_counter()
        async with http.get(f"{url}/views/orders",
                            params={"status": status, "limit": str(PAGE), **cursor}) as response:
            body = await response.read()
        seconds.append(time.perf_counter() - started)
        answer = orjson.loads(body)
        if response.status != 200 or answer["meta"]["partial"]:
            problems.append(f"page {n} of {status}: {response.status} {body[:300]!r}")
            break
        rows += answer["data"]
        if answer["meta"]["next_cursor"] is None:
            break
        cursor = {"cursor": answer["meta"]["next_cursor"]}
    return rows, seconds, problems


def check(served: dict[str, list[dict[str, Any]]], folded: dict[str, dict[str, Any]]) -> list[str]:
    """Each status's pages against the fold: the same rows, in key order, none twice."""
    problems = []
    for status, rows in served.items():
        expected = [data for key, data in sorted(folded.items()) if data["status"] == status]
        ids = [row["order_id"] for row in rows]
        if len(ids) != len(set(ids)):
            problems.append(f"{status}: {len(ids) - len(set(ids))} rows served twice")
        if rows != expected and sorted(ids) == [row["order_id"] for row in expected]:
            problems.append(f"{status}: the fold's rows, out of key order or changed")
        elif rows != expected:
            problems.append(f"{status}: served {len(rows)} rows, the fold has {len(expected)}")
    return problems


async def load(cluster: Cluster, count: int) -> dict[str, Any]:
    """Start the workers on a log of `count` orders; figures of the loading."""
    started = time.monotonic()
    events, states = history(count)
    made = time.monotonic() - started
    await seed_saga(cluster, states)
    starting = time.monotonic()
    try:
        await cluster.start()
    except TimeoutError:  # recovering the seeded saga table can take longer on a busy machine
        await wait_until_all_ready(cluster.workers, timeout=3600)
    ready = time.monotonic() - starting
    producer = await started_producer(cluster.bootstrap)
    try:
        produced = time.monotonic()
        await send_all(producer, cluster.topic("events"),
                       ((event.aggregate_id, orjson.loads(encode(event))) for event in events))
    finally:
        await producer.stop()
    async with aiohttp.ClientSession() as http:
        settled = await settle(cluster, http, timeout=3 * 3600)
    return {"events_made_seconds": round(made, 1), "workers_ready_seconds": round(ready, 1),
            "produce_and_fold_seconds": round(time.monotonic() - produced, 1),
            "settle_wait_seconds": round(settled, 1)}


async def measure(cluster: Cluster, count: int, rounds: int) -> dict[str, Any]:
    loaded = await load(cluster, count)
    saga_commands = sum((await end_offsets(cluster.bootstrap,
                                           cluster.topic("internal-commands"))).values())
    dead_letters = sum((await end_offsets(cluster.bootstrap,
                                          cluster.topic("dead-letters"))).values())
    async with aiohttp.ClientSession() as http:
        served: dict[str, list[dict[str, Any]]] = {}
        timings: dict[str, Any] = {}
        problems: list[str] = []
        every_page: list[float] = []
        for status in ("confirmed", "rejected", "paid"):
            seconds = []
            for n in range(rounds):
                rows, took, wrong = await page_through(http, cluster.urls, status)
                seconds += took
                problems += wrong
                if n == 0:
                    served[status] = rows
                elif rows != served[status]:
                    problems.append(f"{status}: round {n} served other rows than round 0")
            every_page += seconds
            timings[status] = {"rows": len(served[status]), "pages": len(seconds) // rounds,
                               **percentiles(seconds)}
        timings["all"] = percentiles(every_page)
    events, unreadable = await read_log(cluster.bootstrap, cluster.topic("events"))
    folded = {key: row["data"] for key, row in fold(events)["orders"].items()}
    problems += check(served, folded)
    if saga_commands:
        problems.append(f"the saga sent {saga_commands} commands: its seeded state was not used")
    if dead_letters:
        problems.append(f"{dead_letters} dead letters while loading")
    return {"orders": count, "folded_orders": len(folded), "events": len(events),
            "unreadable_events": unreadable, "load": loaded,
            "saga_commands_sent": saga_commands, "dead_letters": dead_letters,
            "page_rows": PAGE, "rounds": rounds, "pages": timings,
            "check": {"ok": not problems and len(folded) == count, "problems": problems[:10]},
            **memory(cluster.workers)}


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5,
                        help="times every status is paged through, first page to last")
    parser.add_argument("--workdir", type=Path, help="where Kafka and the workers keep data")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench-lists-") as scratch:
        workdir = arguments.workdir or Path(scratch)
        kafka = Kafka(directory=workdir / "kafka", port=free_kafka_port())
        cluster = Cluster("", workdir / "workers")
        try:
            cluster.bootstrap = kafka.start()
            log.info("kafka at %s", cluster.bootstrap)
            found = asyncio.run(measure(cluster, arguments.orders, arguments.rounds))
        finally:
            cluster.stop()
            kafka.stop()
    report = {"phase": "lists", "finished_at": iso_now(), "machine": machine(), **found}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-lists.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    print(json.dumps(found, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
