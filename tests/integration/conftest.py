"""Session fixtures: one real Kafka for the run, two workers in one group, a fresh topic prefix."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.integration.cluster import (
    Kafka,
    Results,
    Worker,
    free_kafka_port,
    wait_until_all_ready,
)

PARTITIONS = 4
ADMIN_TOKEN = f"admin-{uuid4().hex}"
APART_FROM = 1000


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    broker = Kafka(directory=tmp_path_factory.mktemp("kafka"), port=free_kafka_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def prefix() -> str:
    return f"test-{uuid4().hex[:10]}"


@pytest.fixture(scope="session")
async def workers(kafka: Kafka, prefix: str,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[Worker]]:
    root: Path = tmp_path_factory.mktemp("workers")
    # Admin operations are on at worker-1 only, so both sides of that switch can be tested.
    # A version 1,000 records behind is built in a process of its own (test_evolution).
    pair = [Worker(name=f"worker-{n}", bootstrap=kafka.bootstrap, prefix=prefix,
                   data_dir=root / f"worker-{n}", partitions=PARTITIONS,
                   settings={"BUILD_APART_FROM": str(APART_FROM),
                             **({"ADMIN_TOKEN": ADMIN_TOKEN} if n == 1 else {})})
            for n in (1, 2)]
    for worker in pair:
        worker.start()
    try:
        await wait_until_all_ready(pair)
        yield pair
    finally:
        for worker in pair:
            worker.stop()


@pytest.fixture(scope="session")
async def producer(kafka: Kafka) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await client.start()
    yield client
    await client.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
async def results(kafka: Kafka, prefix: str, workers: list[Worker]) -> AsyncIterator[Results]:
    consumer = AIOKafkaConsumer(f"{prefix}.command-results", bootstrap_servers=kafka.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    collector = Results(consumer)
    collector.start()
    yield collector
    await collector.stop()
