"""Rows written behind (tables.storage, agents.write_model, agents.results), and rows written
through Faust's table with SHOPSTREAM_WRITE_BEHIND=off: after a clean stop, each partition
database of a view, of the write model and of the command-results view holds exactly the last
changelog record of every key, and the changelog offset it stores is its changelog partition's
last, so recovery neither reads a record again nor skips one."""

from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest
from rocksdict import AccessType, Rdict

from bench import latency
from bench.check import read_changelog
from bench.pipeline_tools import (
    command,
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


@pytest.mark.parametrize("write_behind", ["on", "off"])
async def test_the_rows_and_stored_offsets_match_the_changelog_after_a_clean_stop(
    kafka: Kafka, tmp_path: Path, http: aiohttp.ClientSession, write_behind: str,
) -> None:
    prefix = f"behind-{uuid4().hex[:8]}"
    worker = Worker(name="behind", bootstrap=kafka.bootstrap, prefix=prefix,
                    data_dir=tmp_path / "behind", settings={"WRITE_BEHIND": write_behind})
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

    assert len(await matching_changelog(kafka, worker, prefix, "products-v1")) == SKUS


@pytest.mark.parametrize("write_behind", ["on", "off"])
async def test_the_write_model_and_results_match_their_changelogs_after_a_clean_stop(
    kafka: Kafka, tmp_path: Path, write_behind: str,
) -> None:
    prefix = f"behind-{uuid4().hex[:8]}"
    worker = Worker(name="behind", bootstrap=kafka.bootstrap, prefix=prefix,
                    data_dir=tmp_path / "behind", settings={"WRITE_BEHIND": write_behind})
    results = latency.Results(kafka.bootstrap, f"{prefix}.command-results")
    worker.start()
    try:
        await wait_until_all_ready([worker])
        await results.start()
        producer = await started_producer(kafka.bootstrap)
        try:
            for kind, payload in (("RegisterProduct", product), ("Restock",
                                                                  lambda _: {"quantity": 2})):
                commands = [command(kind, f"sku-{n}", payload(f"sku-{n}")) for n in range(SKUS)]
                for sent in commands:
                    results.expect(sent["command_id"])
                await send_all(producer, f"{prefix}.commands",
                               ((sent["aggregate_id"], sent) for sent in commands))
        finally:
            await producer.stop()
        assert await latency.wait_for(lambda: results.missing() == 0, 600) is not None
        assert results.rejected() == 0
    finally:
        await results.stop()
        worker.stop()
    assert len(await matching_changelog(kafka, worker, prefix, "product-state")) == SKUS
    assert len(await matching_changelog(kafka, worker, prefix, "processed-commands")) == 2 * SKUS
    assert await matching_changelog(kafka, worker, prefix, "command-results-v1")


async def matching_changelog(kafka: Kafka, worker: Worker, prefix: str,
                             table: str) -> dict[bytes, bytes]:
    """The table's rows in the stopped worker's databases, asserted equal to the last record of
    each key in its changelog, with each database's stored offset at its changelog's end."""
    changelog = f"{prefix}-{table}-changelog"
    last = await read_changelog(kafka.bootstrap, changelog)
    changelog_ends = await end_offsets(kafka.bootstrap, changelog)
    databases = {name: rows for name, rows in table_rows(worker.data_dir).items()
                 if name.removesuffix(".db").rpartition("-")[0] == table}
    assert len(databases) == worker.partitions
    rows = {key: value for found in databases.values() for key, value in found.items()}
    assert rows == last
    for partition, end in changelog_ends.items():
        stored = stored_offset(worker.data_dir, f"{table}-{partition}.db")
        assert stored == end - 1, partition
    return rows


def stored_offset(data_dir: Path, name: str) -> int | None:
    [path] = data_dir.rglob(name)
    database = Rdict(str(path), access_type=AccessType.read_only())
    try:
        raw = database.get(FAUST_OFFSET_KEY)
    finally:
        database.close()
    return None if raw is None else int(raw)
