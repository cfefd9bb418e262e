"""The write model: aggregate state per aggregate kind, and the first result of every command.

Both live in changelog-backed tables co-partitioned with the commands topic, so a command
and its aggregate's state and history are always on the same partition.
"""

from typing import Any
from uuid import UUID

from domain.aggregates import AGGREGATES, Aggregate
from streams.app import bytes_table
from streams.envelopes import CommandResult, encode

STATE_TABLES = {aggregate.kind: bytes_table(f"{aggregate.kind}-state") for aggregate in AGGREGATES}
RESULTS = bytes_table("processed-commands")


def load(aggregate: Aggregate, aggregate_id: str) -> Any:
    raw = STATE_TABLES[aggregate.kind].get(aggregate_id.encode())
    return aggregate.state.model_validate_json(raw) if raw is not None else None


def store(aggregate: Aggregate, aggregate_id: str, state: Any) -> None:
    STATE_TABLES[aggregate.kind][aggregate_id.encode()] = state.model_dump_json().encode()


def dedupe_key(command_id: UUID, internal: bool) -> str:
    """The saga's command ids are derivable by anyone, so a client reusing one must not make
    the saga's command look applied: the two sources are deduplicated apart."""
    return f"internal/{command_id}" if internal else str(command_id)


def first_result(command_id: UUID, internal: bool = False) -> bytes | None:
    return RESULTS.get(dedupe_key(command_id, internal).encode())


def remember(result: CommandResult, internal: bool = False) -> bytes:
    encoded = encode(result)
    RESULTS[dedupe_key(result.command_id, internal).encode()] = encoded
    return encoded
