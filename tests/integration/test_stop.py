"""A worker stopped while Kafka does not answer ends within SHOPSTREAM_STOP_TIMEOUT, and without
the clean-stop mark: the rows it holds may lack their changelog records.

The broker is frozen (SIGSTOP), not stopped: a stopped broker refuses connections at once, and
an idle worker with nothing left to send then stops cleanly in a few seconds, as it should."""

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from streams.store import CLEAN_STOP
from tests.integration.cluster import Kafka, Worker, free_kafka_port, wait_until_all_ready

pytestmark = pytest.mark.integration
STOP_TIMEOUT = 5


@pytest.fixture
def lone_kafka(tmp_path: Path) -> Iterator[Kafka]:
    broker = Kafka(directory=tmp_path / "kafka", port=free_kafka_port())
    broker.start()
    yield broker
    broker.stop()


async def test_a_stop_with_kafka_not_answering_ends_in_bounded_time_without_the_clean_mark(
    lone_kafka: Kafka, tmp_path: Path,
) -> None:
    worker = Worker(name="stopping", bootstrap=lone_kafka.bootstrap,
                    prefix=f"stop-{uuid4().hex[:8]}", data_dir=tmp_path / "worker",
                    settings={"STOP_TIMEOUT": str(STOP_TIMEOUT)})
    worker.start()
    try:
        await wait_until_all_ready([worker])
        lone_kafka.freeze()
        assert worker.process is not None
        started = time.monotonic()
        worker.stop()  # SIGTERM, then SIGKILL after 60 s
        took = time.monotonic() - started
        code = worker.process.returncode
        assert code == 1, f"exit {code} after {took:.1f} s"
        assert "could not stop within SHOPSTREAM_STOP_TIMEOUT=5.0 s" in worker.log_path.read_text()
        assert not list(worker.data_dir.rglob(CLEAN_STOP))
    finally:
        lone_kafka.freeze(False)
        worker.kill()
