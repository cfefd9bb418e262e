"""Outbox tables in the user's database: SQLite (embedded) and PostgreSQL, read in commit
order and trimmed of published rows, each behind the same small interface."""

import fcntl
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

COLUMNS = "seq, id, aggregatetype, aggregateid, type, payload, created_at"
MISSING = ("outbox table {table!r} cannot be read ({error}); create it with --create, or give "
           "it the columns of docs/outbox.md")
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


class SourceError(Exception):
    """The outbox cannot be used as configured (bad DSN, bad table name)."""


@dataclass(frozen=True)
class OutboxRow:
    position: int
    id: str
    aggregatetype: str | None
    aggregateid: str | None
    type: str | None
    payload: str | None
    created_at: datetime | str | None
    """as the database gives it; SQLite has no time type"""


class OutboxSource(Protocol):
    table: str

    def create(self) -> None: ...
    def check(self) -> None: ...
    def claim(self) -> bool: ...
    def fetch(self, limit: int) -> list[OutboxRow]: ...
    def delete(self, positions: list[int]) -> None: ...
    def close(self) -> None: ...


SQLITE_TABLE = """
CREATE TABLE IF NOT EXISTS "{table}" (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    aggregatetype TEXT NOT NULL,
    aggregateid TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""

POSTGRES_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    seq bigserial PRIMARY KEY,
    id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    aggregatetype text NOT NULL,
    aggregateid text NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    txid xid8 NOT NULL DEFAULT pg_current_xact_id()
)"""


def open_source(dsn: str, table: str) -> OutboxSource:
    """The outbox that a `sqlite:///path` or `postgresql://...` DSN names."""
    if not TABLE_NAME.fullmatch(table):
        raise SourceError(f"not a plain table name: {table!r}")
    scheme = urlsplit(dsn).scheme
    if scheme == "sqlite":
        return SqliteOutbox(sqlite_path(dsn), table)
    if scheme in ("postgresql", "postgres"):
        return PostgresOutbox(dsn, table)
    raise SourceError(f"unsupported DSN {dsn!r}: use sqlite:///path.db or postgresql://...")


def sqlite_path(dsn: str) -> Path:
    """`sqlite:///relative.db`, `sqlite:////absolute/path.db` (SQLAlchemy's spelling)."""
    path = dsn.removeprefix("sqlite:///")
    if not path or path == dsn:
        raise SourceError(f"a SQLite DSN is sqlite:///path.db, not {dsn!r}")
    return Path(path)


class SqliteOutbox:
    """SQLite lets one writer commit at a time, so the AUTOINCREMENT order is commit order."""

    def __init__(self, path: Path, table: str) -> None:
        if "." in table:
            raise SourceError(f"SQLite tables have no schema: {table!r}")
        self.path, self.table = path, table
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.lock: IO[bytes] | None = None

    def create(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SQLITE_TABLE.format(table=self.table))

    def check(self) -> None:
        try:
            self.db.execute(f'SELECT {COLUMNS} FROM "{self.table}" LIMIT 0')
        except sqlite3.OperationalError as exc:
            raise SourceError(MISSING.format(table=self.table, error=exc)) from exc

    def claim(self) -> bool:
        """Only one relay per outbox, or two could reorder an aggregate's rows."""
        self.lock = open(f"{self.path}.{self.table}.relay-lock", "ab")
        try:
            fcntl.flock(self.lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.close()
            self.lock = None
            return False
        return True

    def fetch(self, limit: int) -> list[OutboxRow]:
        cursor = self.db.execute(
            f'SELECT seq, id, aggregatetype, aggregateid, type, payload, created_at '
            f'FROM "{self.table}" ORDER BY seq LIMIT ?', (limit,))
        return [OutboxRow(seq, str(row_id), kind, aggregate, type_, payload, at)
                for seq, row_id, kind, aggregate, type_, payload, at in cursor.fetchall()]

    def delete(self, positions: list[int]) -> None:
        for start in range(0, len(positions), 500):  # SQLite's old limit: 999 parameters
            chunk = positions[start:start + 500]
            self.db.execute(f'DELETE FROM "{self.table}" WHERE seq IN '
                            f'({",".join("?" * len(chunk))})', chunk)

    def close(self) -> None:
        self.db.close()
        if self.lock is not None:
            self.lock.close()


class PostgresOutbox:
    """Rows become visible in commit order, not in `seq` order: a transaction that took its
    sequence numbers early may commit late. So only rows of transactions older than the
    oldest one still running are read (`txid < pg_snapshot_xmin(pg_current_snapshot())`):
    every such transaction has ended, and no row below that line can still appear."""

    def __init__(self, dsn: str, table: str) -> None:
        self.table = table
        self.name = sql.Identifier(*table.split("."))
        self.db = psycopg.connect(dsn, autocommit=True, application_name="shopstream-outbox")

    def create(self) -> None:
        self.db.execute(sql.SQL(POSTGRES_TABLE).format(table=self.name))

    def check(self) -> None:
        try:
            self.db.execute(sql.SQL(f"SELECT {COLUMNS}, txid FROM {{table}} LIMIT 0").format(
                table=self.name))
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            raise SourceError(MISSING.format(table=self.table, error=str(exc).strip())) from exc

    def claim(self) -> bool:
        """A session advisory lock: released when the relay's connection ends, even by a crash."""
        row = self.db.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                              (f"shopstream-outbox:{self.table}",)).fetchone()
        return bool(row and row[0])

    def fetch(self, limit: int) -> list[OutboxRow]:
        query = sql.SQL(
            "SELECT seq, id::text, aggregatetype, aggregateid, type, payload::text, created_at "
            "FROM {table} WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY seq LIMIT %s").format(table=self.name)
        return [OutboxRow(seq, row_id, kind, aggregate, type_, payload, at)
                for seq, row_id, kind, aggregate, type_, payload, at
                in self.db.execute(query, (limit,)).fetchall()]

    def delete(self, positions: list[int]) -> None:
        self.db.execute(sql.SQL("DELETE FROM {table} WHERE seq = ANY(%s)").format(
            table=self.name), (positions,))

    def close(self) -> None:
        self.db.close()
