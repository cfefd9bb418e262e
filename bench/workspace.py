"""What a benchmark run stands on: its directory, topic prefix and Kafka, and the generated
event log with the fold it must produce."""

import asyncio
import re
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.data import Expected, fold_into, generate
from ops.progress import Reporter
from tests.integration.cluster import ROOT, Kafka, free_kafka_port


async def fill(bootstrap: str, topic: str, partitions: int, events: int,
               keys: int, quiet: bool = False) -> Expected:
    """Create the event topic, produce the events, and fold them as they go."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, partitions, 1,
                                                topic_configs={"retention.ms": "-1"})])
    finally:
        await admin.close()
    expected = Expected()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        with Reporter("producing events", events, quiet=quiet) as bar:
            for key, value in generate(events, keys):
                fold_into(expected, key, value)
                pending.append(await producer.send(topic, value, key=key))
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    bar.advance(len(pending))
                    pending.clear()
            await asyncio.gather(*pending)
            bar.advance(len(pending))
    finally:
        await producer.stop()
    return expected


def folded(events: int, keys: int) -> Expected:
    """The fold `fill` would give, without producing anything."""
    expected = Expected()
    for key, value in generate(events, keys):
        fold_into(expected, key, value)
    return expected


def kafka_version() -> str:
    found = re.search(r"<kafka\.version>(.+?)</kafka\.version>",
                      (ROOT / "broker" / "pom.xml").read_text())
    return found.group(1) if found else "unknown"


def workspace(workdir: Path | None, name: str) -> tuple[Path, str, Kafka]:
    """The run's directory (a fresh temporary one unless given), topic prefix and Kafka."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix=f"shopstream-{name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    kafka = Kafka(workdir / "kafka", free_kafka_port())
    print(f"starting Kafka in {kafka.directory} ...", flush=True)
    return workdir, f"bench-{time.strftime('%Y%m%d%H%M%S')}", kafka
