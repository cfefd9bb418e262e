"""The write model: one changelog-backed table of aggregate state per aggregate kind."""

from typing import Any

from agents.aggregates import AGGREGATES, Aggregate
from streams.app import bytes_table

STATE_TABLES = {
    aggregate.kind: bytes_table(f"{aggregate.kind}-state")
    for aggregate in AGGREGATES
}


def load(aggregate: Aggregate, aggregate_id: str) -> Any:
    raw = STATE_TABLES[aggregate.kind].get(aggregate_id.encode())
    return aggregate.state.model_validate_json(raw) if raw is not None else None


def store(aggregate: Aggregate, aggregate_id: str, state: Any) -> None:
    STATE_TABLES[aggregate.kind][aggregate_id.encode()] = state.model_dump_json().encode()
