"""`python -m bench.outbox [--rows N]`: how fast the relay drains a PostgreSQL outbox into a
local Kafka, process start included (no workers: the relay alone)."""

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ops.outbox_sources import open_source
from tests.integration.cluster import ROOT, Kafka, free_kafka_port
from tests.integration.postgres import Postgres

INSERT = ("INSERT INTO outbox (aggregatetype, aggregateid, type, payload) "
          "VALUES ('product', %s, 'Restock', '{\"quantity\": 1}')")


async def drain(rows: int, batch: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    kafka = Kafka(directory=root / "kafka", port=free_kafka_port())
    server = Postgres(Path(tempfile.mkdtemp(prefix="shopstream-pg-")))
    try:
        kafka.start()
        server.start()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(f"bench.{name}", 4, 1)
                                   for name in ("commands", "dead-letters")])
        await admin.close()
        source = open_source(server.dsn, "outbox")
        source.create()
        source.close()
        with psycopg.connect(server.dsn) as db, db.cursor() as cursor:
            cursor.executemany(INSERT, [(f"sku-{n % 100}",) for n in range(rows)])
        env = {**os.environ, "SHOPSTREAM_BROKER": f"kafka://{kafka.bootstrap}",
               "SHOPSTREAM_TOPIC_PREFIX": "bench"}
        started = time.monotonic()
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "streams", "outbox", "--dsn", server.dsn,
                             "--until-empty", "--quiet", "--batch", str(batch)],
            cwd=ROOT, env=env, check=True)
        return time.monotonic() - started
    finally:
        server.stop()
        kafka.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(server.directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    seconds = asyncio.run(drain(args.rows, args.batch))
    print(f"relay: {args.rows:,} rows in {seconds:.1f} s, process start included "
          f"({args.rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
