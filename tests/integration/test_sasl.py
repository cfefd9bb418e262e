"""Kafka with authentication: a broker started by the project's script requiring SASL; a
worker and the CLI with the right credentials work end to end, wrong ones fail at once,
saying the broker refused them."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest

from tests.integration.cluster import (
    ROOT,
    Kafka,
    Worker,
    free_kafka_port,
    get_json,
    wait_until_all_ready,
)

pytestmark = pytest.mark.integration
USER, PASSWORD = "shop-worker", f"secret-{uuid4().hex}"
BOUND = 120.0  # seconds a refused start may take at most, not how fast it must be


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    broker = Kafka(directory=tmp_path_factory.mktemp("sasl-kafka"), port=free_kafka_port(),
                   sasl=(USER, PASSWORD))
    broker.start()
    yield broker
    broker.stop()


def credentials(mechanism: str, password: str = PASSWORD) -> dict[str, str]:
    return {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_USERNAME": USER, "KAFKA_PASSWORD": password}


@pytest.fixture(scope="module")
async def sasl_worker(sasl_kafka: Kafka,
                      tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    worker = Worker(name="sasl", bootstrap=sasl_kafka.bootstrap, prefix=f"sasl-{uuid4().hex[:8]}",
                    data_dir=tmp_path_factory.mktemp("sasl-worker") / "worker",
                    settings=credentials("SCRAM-SHA-512"))
    worker.start()
    try:
        await wait_until_all_ready([worker])
        yield worker
    finally:
        worker.stop()


async def test_a_worker_with_the_right_credentials_serves_a_command_in_its_view(
    sasl_kafka: Kafka, sasl_worker: Worker,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    body = {"command_id": str(uuid4()), "type": "RegisterProduct", "aggregate_id": sku,
            "payload": {"name": "Lock", "price": "12.00", "stock": 3}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sasl_worker.url}/commands", json=body) as response:
            assert response.status == 200, await response.text()
            token = (await response.json())["token"]
        status, row = await get_json(http, f"{sasl_worker.url}/views/products/{sku}?token={token}")
    assert status == 200 and (row["data"]["price"], row["data"]["available"]) == ("12.00", 3)
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):  # the CLI's plain clients authenticate too
        code, output = await cli(sasl_kafka, sasl_worker.prefix, credentials(mechanism),
                                 "dlq", "list")
        assert code == 0 and "0 dead letters waiting" in output, output
    assert PASSWORD not in sasl_worker.log_path.read_text(errors="replace")


async def test_the_cli_with_a_wrong_password_stops_saying_authentication_failed(
    sasl_kafka: Kafka,
) -> None:
    code, output = await cli(sasl_kafka, "sasl-wrong", credentials("SCRAM-SHA-512", "nope"),
                             "verify", "--quiet")
    assert code == 2, output
    assert f"Kafka authentication failed for user {USER!r} with SCRAM-SHA-512" in output
    assert "nope" not in output


async def test_a_worker_with_a_wrong_password_exits_saying_authentication_failed(
    sasl_kafka: Kafka, tmp_path: Path,
) -> None:
    worker = Worker(name="sasl-wrong", bootstrap=sasl_kafka.bootstrap, prefix="sasl-wrong",
                    data_dir=tmp_path / "worker", settings=credentials("PLAIN", "nope"))
    worker.start()
    assert worker.process is not None
    try:
        code = await asyncio.wait_for(asyncio.to_thread(worker.process.wait), BOUND)
    finally:
        worker.kill()
    assert code != 0
    assert f"Kafka authentication failed for user {USER!r} with PLAIN" in worker.log_tail(200)


async def cli(kafka: Kafka, prefix: str, settings: dict[str, str],
              *arguments: str) -> tuple[int | None, str]:
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", *arguments, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SHOPSTREAM_BROKER": f"kafka://{kafka.bootstrap}",
             "SHOPSTREAM_TOPIC_PREFIX": prefix,
             **{f"SHOPSTREAM_{name}": value for name, value in settings.items()}})
    output = (await asyncio.wait_for(run.communicate(), BOUND))[0].decode()
    return run.returncode, output
