"""The outbox relay's pure parts and its SQLite source: rows to commands or dead letters."""

import base64
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
import pytest

from ops.dlq import replayable
from ops.outbox import command_id_of, command_of, letter_of
from ops.outbox_sources import OutboxRow, SourceError, SqliteOutbox, open_source
from streams.dead_letters import dead_letter

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def row(payload: str | None = '{"quantity": 2}', kind: str | None = "Restock",
        row_id: str = "7", at: datetime | str = AT) -> OutboxRow:
    return OutboxRow(3, row_id, "product", "sku-1", kind, payload, at)


def test_a_uuid_id_is_the_command_id_and_any_other_id_derives_one() -> None:
    uuid = "0b6a4f52-2a51-4d8e-9d1c-6f1a1c7e2b10"
    assert command_id_of("outbox", uuid) == UUID(uuid)
    assert command_id_of("outbox", "7") == uuid5(NAMESPACE_URL, "outbox:outbox/7")
    assert command_id_of("outbox", "7") != command_id_of("other", "7")


def test_a_row_becomes_the_command_it_names() -> None:
    command = command_of(row(), "outbox")
    assert command.command_id == command_id_of("outbox", "7")
    assert (command.type, command.aggregate_id, command.issued_at) == ("Restock", "sku-1", AT)
    assert command.payload.model_dump() == {"quantity": 2}
    naive = command_of(row(at="2026-12-02 12:00:00"), "outbox")  # SQLite's CURRENT_TIMESTAMP
    assert naive.issued_at == AT


@pytest.mark.parametrize("bad", [row(payload="{nope"), row(payload=None), row(kind="Explode"),
                                 row(payload='{"quantity": -1}'), row(kind=None),
                                 row(at="yesterday")])
def test_a_row_that_is_no_valid_command_is_refused(bad: OutboxRow) -> None:
    with pytest.raises(ValueError):
        command_of(bad, "outbox")


def test_a_dead_letter_names_the_table_and_row_and_keeps_the_row() -> None:
    letter = letter_of(row(payload="{nope"), "outbox", "the payload is not JSON")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "outbox:outbox", 0, 3)
    assert letter.key is not None and base64.b64decode(letter.key) == b"sku-1"
    kept = orjson.loads(base64.b64decode(letter.value))
    assert kept["id"] == "7" and kept["payload"] == "{nope"
    assert "outbox row 7" in letter.error
    assert letter.dead_letter_id == letter_of(row(), "outbox", "again").dead_letter_id


def test_sqlite_outbox_reads_in_commit_order_and_forgets_deleted_rows(tmp_path: Path) -> None:
    source = open_source(f"sqlite:///{tmp_path / 'shop.db'}", "outbox")
    source.create()
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.executemany("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                       "VALUES (?, 'product', 'sku-1', 'Restock', '{\"quantity\": 1}')",
                       [("b",), ("a",), ("c",)])
    first = source.fetch(2)
    assert [r.id for r in first] == ["b", "a"]
    assert command_of(first[0], "outbox").issued_at.tzinfo is not None
    source.delete([r.position for r in first])
    assert [r.id for r in source.fetch(10)] == ["c"]
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.executemany("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                       "VALUES (?, 'product', 'sku-1', 'Restock', '{}')",
                       [(f"n{n}",) for n in range(1200)])
    source.delete([r.position for r in source.fetch(2000)])
    assert source.fetch(10) == []
    source.close()


def test_only_one_relay_claims_an_sqlite_outbox(tmp_path: Path) -> None:
    first = SqliteOutbox(tmp_path / "shop.db", "outbox")
    second = SqliteOutbox(tmp_path / "shop.db", "outbox")
    assert first.claim()
    assert not second.claim()
    first.close()
    assert second.claim()
    second.close()


@pytest.mark.parametrize(("dsn", "table"), [("mysql://x/y", "outbox"),
                                             ("sqlite:///x.db", "outbox; DROP TABLE x"),
                                             ("sqlite://", "outbox"),
                                             ("sqlite:///x.db", "public.outbox")])
def test_bad_dsn_or_table_name_is_a_clear_error(dsn: str, table: str) -> None:
    with pytest.raises(SourceError):
        open_source(dsn, table)


def test_an_outbox_dead_letter_is_not_replayed_to_a_topic() -> None:
    assert not replayable(letter_of(row(), "outbox", "bad"))
    assert replayable(dead_letter("p.commands", 0, 1, b"k", b"{}", "bad"))


def test_a_missing_or_foreign_table_is_a_clear_error(tmp_path: Path) -> None:
    source = open_source(f"sqlite:///{tmp_path / 'shop.db'}", "outbox")
    with pytest.raises(SourceError, match="--create"):
        source.check()
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE outbox (id TEXT, payload TEXT)")
    with pytest.raises(SourceError, match="seq"):
        source.check()
    source.close()
