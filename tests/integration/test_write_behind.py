"""Rows written behind (tables.storage): after a clean stop, each partition database of a view
holds exactly the last changelog record of every key, and the changelog offset it stores is
its changelog partition's last, so recovery neither reads a record again nor skips one."""

from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest
from rocksdict import AccessType, Rdict

from bench.check import read_changelog
from bench.pipeline_tools import (
    end_offsets,
    event,
    product,
    send_all,
    started_producer,
    wait_folded,
)
from bench.recovery import FAUST_OFFSET_KEY
from tests.integration.cluster import Kafka, Worker, wait_until_all_ready
from tests.integration.test_bulk_restore import table_rows

pytestmark = pytest.mark.integration

SKUS = 1500


async def test_the_rows_and_stored_offsets_match_the_changelog_after_a_clean_stop(
    kafka: Kafka, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    prefix = f"behind-{uuid4().hex[:8]}"
    worker = Worker(name="behind", bootstrap=kafka.bootstrap, prefix=prefix,
                    data_dir=tmp_path / "behind", settings={"WRITE_BEHIND": "on"})
    worker.start()
    try:
        await wait_until_all_ready([worker])
        producer = await started_producer(kafka.bootstrap)
        try:
            for version, kind, payload in ((1, "ProductRegistered", product),
                                           (2, "StockAdded", lambda _: {"quantity": 2})):
                await send_all(producer, f"{prefix}.events", (
                    (f"sku-{n}", event(kind, f"sku-{n}", version, payload(f"sku-{n}")))
                    for n in range(SKUS)))
        finally:
            await producer.stop()
        ends = await end_offsets(kafka.bootstrap, f"{prefix}.events")
        assert await wait_folded(http, [worker.url], "products", ends, 600) is not None
    finally:
        worker.stop()

    changelog = f"{prefix}-products-v1-changelog"
    last = await read_changelog(kafka.bootstrap, changelog)
    changelog_ends = await end_offsets(kafka.bootstrap, changelog)
    databases = {name: rows for name, rows in table_rows(worker.data_dir).items()
                 if name.startswith("products-v1-")}
    assert len(databases) == worker.partitions
    rows = {key: value for found in databases.values() for key, value in found.items()}
    assert len(rows) == SKUS and rows == last
    for partition, end in changelog_ends.items():
        stored = stored_offset(worker.data_dir, f"products-v1-{partition}.db")
        assert stored == end - 1, partition


def stored_offset(data_dir: Path, name: str) -> int | None:
    [path] = data_dir.rglob(name)
    database = Rdict(str(path), access_type=AccessType.read_only())
    try:
        raw = database.get(FAUST_OFFSET_KEY)
    finally:
        database.close()
    return None if raw is None else int(raw)
