"""The outbox relay against real databases and the real broker: SQLite, and a PostgreSQL server
written by concurrent transactions while the relay is killed with SIGKILL and restarted."""

import asyncio
import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import orjson
import psycopg
import pytest

from ops.outbox import command_id_of
from ops.outbox_sources import SourceError, open_source
from tests.integration.cluster import Kafka, Worker
from tests.integration.outbox_load import (
    RelayProcess,
    TimedRecords,
    Written,
    percentile,
    register,
    writer,
)
from tests.integration.postgres import Postgres, server_bin
from tests.integration.test_dead_letters import dead_letters_for, dlq

pytestmark = pytest.mark.integration

ROWS = int(os.environ.get("SHOPSTREAM_OUTBOX_ROWS", "2000"))
"""Committed rows in the PostgreSQL test: 2,000 in CI, 10,000 for the figures in docs/outbox.md."""
WRITERS = 8
KILLS = 5


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if server_bin() is None:
        pytest.fail("PostgreSQL is not installed (.ci/run installs it): apt-get install postgresql")
    directory = Path(tempfile.mkdtemp(prefix="shopstream-pg-"))
    server = Postgres(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def timed_results(kafka: Kafka, prefix: str,
                        workers: list[Worker]) -> AsyncIterator[TimedRecords]:
    collector = TimedRecords(kafka.bootstrap, f"{prefix}.command-results")
    await collector.start()
    yield collector
    await collector.stop()


@pytest.fixture
async def timed_commands(kafka: Kafka, prefix: str,
                         workers: list[Worker]) -> AsyncIterator[TimedRecords]:
    collector = TimedRecords(kafka.bootstrap, f"{prefix}.commands")
    await collector.start()
    yield collector
    await collector.stop()


async def test_sqlite_outbox_becomes_commands_and_a_bad_row_a_dead_letter(
    kafka: Kafka, prefix: str, timed_results: TimedRecords, tmp_path: Path,
) -> None:
    path = tmp_path / "shop.db"
    relay = RelayProcess(f"sqlite:///{path}", kafka.bootstrap, prefix, tmp_path / "relay.log",
                         extra=("--create", "--until-empty"))
    relay.start()
    assert relay.wait(120) == 0, relay.log_tail()

    sku = f"sku-{uuid4().hex[:8]}"
    rows = [("1", "RegisterProduct", {"name": "Mug", "price": "4.50", "stock": 1}),
            ("2", "Restock", {"quantity": 2}),
            ("3", "Restock", {"quantity": "many"}),
            (str(uuid4()), "Restock", {"quantity": 3})]
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                       "VALUES (?, 'product', ?, ?, ?)",
                       [(row_id, sku, kind, orjson.dumps(body).decode())
                        for row_id, kind, body in rows])
        bad_seq = db.execute("SELECT seq FROM outbox WHERE id = '3'").fetchone()[0]
    relay.start()
    assert relay.wait(120) == 0, relay.log_tail()

    ids = {row_id: str(command_id_of("outbox", row_id)) for row_id, _, _ in rows}
    good = [ids["1"], ids["2"], ids[rows[3][0]]]
    assert ids[rows[3][0]] == rows[3][0]  # a UUID id is the command id as it is
    await timed_results.wait_until(lambda: timed_results.count(set(good)) == 3, 60)
    versions = [timed_results.by_command[command_id][0][1]["version"] for command_id in good]
    assert versions == [1, 2, 3]
    assert ids["3"] not in timed_results.by_command
    letters = await dead_letters_for(kafka, prefix, {("outbox:outbox", 0, bad_seq)})
    assert "quantity" in letters[0]["error"]
    letter_id = letters[0]["dead_letter_id"]
    assert "not replaying 1" in await dlq(kafka, prefix, "replay", "--id", letter_id)
    assert "discarded 1" in await dlq(kafka, prefix, "discard", "--id", letter_id)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        db.execute("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                   "VALUES ('2', 'product', ?, 'Restock', '{\"quantity\": 2}')", (sku,))
    relay.start()  # the row published again, as after a crash between the ack and the delete
    assert relay.wait(120) == 0, relay.log_tail()
    await timed_results.wait_until(lambda: len(timed_results.by_command[ids["2"]]) == 2, 60)
    first, again = (result for _, result in timed_results.by_command[ids["2"]])
    assert again == first and first["version"] == 2


def test_postgres_publishes_only_below_the_oldest_running_transaction(
    postgres: Postgres,
) -> None:
    source = open_source(postgres.dsn, "early_late")
    source.create()
    insert = ("INSERT INTO early_late (aggregatetype, aggregateid, type, payload) "
              "VALUES ('product', 'sku', 'Restock', '{\"quantity\": 1}')")
    try:
        with psycopg.connect(postgres.dsn) as early, psycopg.connect(postgres.dsn) as late:
            early.execute(insert)  # takes the lower seq, commits last
            late.execute(insert)
            late.commit()
            assert source.fetch(10) == []
            early.commit()
            assert [row.position for row in source.fetch(10)] == [1, 2]
    finally:
        source.close()


def test_postgres_table_without_the_relays_columns_is_a_clear_error(postgres: Postgres) -> None:
    with psycopg.connect(postgres.dsn) as db:
        db.execute("CREATE TABLE debezium_only (id uuid PRIMARY KEY, aggregatetype text, "
                   "aggregateid text, type text, payload jsonb)")
    for table in ("debezium_only", "no_such_table"):
        source = open_source(postgres.dsn, table)
        with pytest.raises(SourceError, match=r"docs/outbox\.md"):
            source.check()
        source.close()


async def outbox_rows_left(dsn: str, within: float) -> int:
    """The rows in the outbox once it is empty, or after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        with psycopg.connect(dsn) as db:
            row = db.execute("SELECT count(*) FROM outbox").fetchone()
        left = int(row[0]) if row else 0
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.2)


async def test_postgres_outbox_under_concurrent_writers_and_sigkill(
    kafka: Kafka, prefix: str, timed_results: TimedRecords, timed_commands: TimedRecords,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    rng = random.Random(15)
    source = open_source(postgres.dsn, "outbox")
    source.create()
    source.close()
    relay = RelayProcess(postgres.dsn, kafka.bootstrap, prefix, tmp_path / "relay.log")
    relay.start()
    run = uuid4().hex[:6]
    skus = [f"sku-{run}-{n}" for n in range(40)]
    own = [f"sku-{run}-own-{n}" for n in range(WRITERS)]
    written = Written()
    await register(postgres.dsn, skus + own, written)
    started = time.monotonic()
    per_writer = (ROWS - len(written.committed)) // WRITERS
    writing = asyncio.gather(*(writer(postgres.dsn, skus, own[n], per_writer, written,
                                      random.Random(rng.random())) for n in range(WRITERS)))
    before = len(timed_results.by_command)
    try:
        for threshold in sorted(rng.sample(range(ROWS // 10, ROWS), KILLS)):
            await timed_results.wait_until(
                lambda t=threshold: len(timed_results.by_command) - before >= t, 300)
            relay.kill()
            relay.start()
        await writing
        written.seconds = time.monotonic() - started
        timed_results.expect(set(written.committed))
        try:
            await timed_results.wait_until(lambda: not timed_results.missing, 300 + ROWS / 20)
        except TimeoutError:
            with psycopg.connect(postgres.dsn) as db:
                left = db.execute("SELECT count(*) FROM outbox").fetchone()
            relayed = len(set(written.committed) & timed_commands.by_command.keys())
            pytest.fail(f"{len(timed_results.missing)} of {len(written.committed)} committed "
                        f"rows have no result; {relayed} reached the commands topic, "
                        f"{left} rows left in the outbox\n{relay.log_tail()}")
        # A row is deleted once the broker has it; the worker may answer its command first.
        left = await outbox_rows_left(postgres.dsn, within=60)
    finally:
        writing.cancel()
        relay.kill()

    assert relay.starts == KILLS + 1
    assert written.out_of_order > 0 and written.rolled_back
    assert not written.rolled_back & set(timed_results.by_command)
    for sku, command_ids in written.per_aggregate().items():
        for version, command_id in enumerate(command_ids, start=1):
            results = [result for _, result in timed_results.by_command[command_id]]
            assert results[0]["status"] == "accepted", (sku, results[0])
            assert results[0]["version"] == version, (sku, version, results[0])
            assert all(result == results[0] for result in results)  # a repeat gets the first
    assert left == 0
    latencies = [timed_results.by_command[command_id][0][0] - at
                 for command_id, (_, _, at) in written.committed.items()]
    relayed = [timed_commands.by_command[command_id][0][0] - at
               for command_id, (_, _, at) in written.committed.items()
               if command_id in timed_commands.by_command]
    repeats = sum(len(timed_commands.by_command.get(c, ())) - 1 for c in written.committed)
    print(f"\noutbox: {len(written.committed)} committed rows ({written.out_of_order} "
          f"committed out of id order, {len(written.rolled_back)} rolled back), relay killed "
          f"{KILLS} times, {repeats} re-published; commit to command result: "
          f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms; commit to command on the topic: "
          f"p50 {percentile(relayed, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(relayed, 0.99) * 1000:.0f} ms; "
          f"writing took {written.seconds:.1f} s")

