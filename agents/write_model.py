"""The write model: aggregate state per aggregate kind, and the first result of every command.

Both live in changelog-backed tables co-partitioned with the commands topic, so a command
and its aggregate's state and history are always on the same partition.

With SHOPSTREAM_WRITE_BEHIND on (and a RocksDB store), writes wait in `PENDING`, where reads
see them, until the command batch ends with `flush`: per table and partition one RocksDB write
batch and the changelog records in whole producer batches, which the flush before the next
commit awaits, as for the views' rows (tables.storage).
"""

from typing import Any
from uuid import UUID

from domain.aggregates import AGGREGATES, Aggregate
from streams.app import bytes_table
from streams.envelopes import CommandResult, encode
from streams.faust_patches import stored_value
from tables.storage import put_rows, send_rows, writes_behind

STATE_TABLES = {aggregate.kind: bytes_table(f"{aggregate.kind}-state") for aggregate in AGGREGATES}
RESULTS = bytes_table("processed-commands")
PENDING: dict[Any, dict[int, dict[bytes, bytes]]] = {}
"""Per table and partition, the rows written and not yet flushed."""


def load(aggregate: Aggregate, aggregate_id: str, partition: int) -> Any:
    raw = _get(STATE_TABLES[aggregate.kind], aggregate_id.encode(), partition)
    return aggregate.state.model_validate_json(raw) if raw is not None else None


def store(aggregate: Aggregate, aggregate_id: str, state: Any, partition: int) -> None:
    store_encoded(aggregate, aggregate_id, state.model_dump_json().encode(), partition)


def store_encoded(aggregate: Aggregate, aggregate_id: str, raw: bytes, partition: int) -> None:
    _set(STATE_TABLES[aggregate.kind], aggregate_id.encode(), raw, partition)


def dedupe_key(command_id: UUID, internal: bool) -> str:
    """The saga's command ids are derivable by anyone, so a client reusing one must not make
    the saga's command look applied: the two sources are deduplicated apart."""
    return f"internal/{command_id}" if internal else str(command_id)


def first_result(command_id: UUID, internal: bool, partition: int) -> bytes | None:
    return _get(RESULTS, dedupe_key(command_id, internal).encode(), partition)


def remember(result: CommandResult, internal: bool, partition: int) -> bytes:
    encoded = encode(result)
    _set(RESULTS, dedupe_key(result.command_id, internal).encode(), encoded, partition)
    return encoded


async def flush() -> None:
    """Write what is pending: every table's rows into RocksDB before anything is awaited, then
    their changelog records."""
    pending = list(PENDING.items())
    PENDING.clear()
    for table, rows in pending:
        put_rows(table, rows)
    for table, rows in pending:
        await send_rows(table, rows)


def _get(table: Any, key: bytes, partition: int) -> bytes | None:
    """Inside a stream whose current event is on `partition` when not written behind."""
    if not writes_behind(table):
        found: bytes | None = table.get(key)
        return found
    raw = PENDING.get(table, {}).get(partition, {}).get(key)
    return raw if raw is not None else stored_value(table.data, partition, key)


def _set(table: Any, key: bytes, value: bytes, partition: int) -> None:
    if writes_behind(table):
        PENDING.setdefault(table, {}).setdefault(partition, {})[key] = value
    else:
        table[key] = value
