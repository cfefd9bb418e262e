"""The peers the projections are measured against, each run as its own process.

`python -m bench.consumers KIND --bootstrap B --topic T --group G --state-dir D`, KIND one of
raw (a plain aiokafka consumer decoding with orjson), faust-noop (a Faust agent that does
nothing), faust-table (a Faust agent folding each event into a RocksDB table, one write per
event) or quix (the same fold with Quix Streams' state). Each consumes from its group's
committed offsets until SIGTERM; the harness watches those offsets from outside, so Faust and
Quix commit at the same interval.
"""

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from streams.envelopes import parse_event
from tables.products import VIEW
from tables.view import apply

# The project's own RocksDB options (streams/app.py), so c's store is sized as the worker's.
ROCKSDB_OPTIONS = {
    "block_cache_size": 16 * 1024 * 1024,
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "max_open_files": 256,
}


def raw(args: argparse.Namespace) -> None:
    """Decode every event with orjson; on stop, write the count and the sum of versions."""
    count, version_sum = asyncio.run(_raw(args))
    Path(args.state_dir, "raw.json").write_bytes(
        orjson.dumps({"events": count, "version_sum": version_sum}))


async def _raw(args: argparse.Namespace) -> tuple[int, int]:
    from aiokafka import AIOKafkaConsumer

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    consumer = AIOKafkaConsumer(args.topic, bootstrap_servers=args.bootstrap,
                                group_id=args.group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    count = version_sum = 0
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batches.values():
                for record in records:
                    version_sum += orjson.loads(record.value)["version"]
                count += len(records)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return count, version_sum


def faust_app(args: argparse.Namespace, store: str) -> Any:
    import faust

    return faust.App(args.group, broker=f"kafka://{args.bootstrap}", store=store,
                     datadir=args.state_dir, topic_partitions=args.partitions,
                     consumer_auto_offset_reset="earliest", web_enabled=False,
                     rocksdb_options=ROCKSDB_OPTIONS, autodiscover=False, producer_acks=-1,
                     broker_commit_interval=args.commit_interval)


def faust_noop(args: argparse.Namespace) -> None:
    app = faust_app(args, "memory://")
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(topic)
    async def noop(stream: Any) -> None:
        async for _ in stream.events():
            pass

    _run_faust(app)


def faust_table(args: argparse.Namespace) -> None:
    app = faust_app(args, "rocksdb://")
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    products = app.Table("products", partitions=args.partitions, key_type=bytes,
                         value_type=bytes)

    @app.agent(topic)
    async def project(stream: Any) -> None:
        async for event in stream.events():
            parsed = parse_event(event.value)
            stored = products.get(event.key)
            row = apply(VIEW, orjson.loads(stored) if stored is not None else None, parsed,
                        parsed.aggregate_id)
            if row is not None:
                products[event.key] = orjson.dumps(row)

    _run_faust(app)


def _run_faust(app: Any) -> None:
    from faust import Worker

    Worker(app, loglevel="WARNING").execute_from_commandline()


def quix(args: argparse.Namespace) -> None:
    from quixstreams import Application
    from quixstreams.state import State

    app = Application(broker_address=args.bootstrap, consumer_group=args.group,
                      auto_offset_reset="earliest", state_dir=args.state_dir,
                      commit_interval=args.commit_interval, loglevel="WARNING")
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="bytes")

    def project(value: bytes, state: State) -> None:
        parsed = parse_event(value)
        row = apply(VIEW, state.get("row"), parsed, parsed.aggregate_id)
        if row is not None:
            state.set("row", row)

    app.dataframe(topic).update(project, stateful=True)
    app.run()


KINDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "raw": raw, "faust-noop": faust_noop, "faust-table": faust_table, "quix": quix,
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.consumers")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--commit-interval", type=float, default=2.8,
                        help="seconds between commits (Faust's default; raw commits per batch)")
    args = parser.parse_args(argv)
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    KINDS[args.kind](args)


if __name__ == "__main__":
    main(sys.argv[1:])
