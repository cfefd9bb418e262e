"""What a read view is, and the idempotent fold of one event into one of its rows."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from streams.envelopes import Event
from tables.listing import Listing, Ranking

Data = dict[str, Any]

MAX_ROW_BYTES = 900_000
"""The largest row a view stores, and the largest state a command may leave its aggregate
(`agents.command_handler` rejects the command). Its changelog record must fit in one
produce request (Faust's `producer_max_request_size`, 1,000,000 bytes) and under the
broker's default `message.max.bytes` (1,048,588) with its key and the batch's header."""


class RowTooLarge(ValueError):
    pass


class Row(BaseModel):
    """The shape of a view's row as HTTP serves it: documented in /openapi.json."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class View:
    name: str
    version: int
    handles: frozenset[str]
    keys: Callable[[Event], list[str]]
    project: Callable[[Data | None, Event, str], Data]
    row: type[Row]
    by_aggregate: bool = True
    window: int | None = None  # seconds: one row per key per tumbling window of event time
    paged: str | None = None  # a list in the row that HTTP answers page by page
    listing: Listing | None = None  # what GET /views/{name} filters on, across all partitions
    ranking: Ranking | None = None  # what GET /views/{name}/top sums and ranks (windowed views)
    new_fields: frozenset[str] = frozenset()  # fields this version adds to the one before

    @property
    def table_name(self) -> str:
        return f"{self.name}-v{self.version}"

    def window_start(self, event: Event) -> datetime:
        assert self.window is not None
        seconds = event.occurred_at.timestamp()
        return datetime.fromtimestamp(seconds - seconds % self.window, UTC)


def apply(view: View, row: Data | None, event: Event, key: str) -> Data | None:
    """Fold one event into a row; None when the row already reflects it."""
    versions: dict[str, int] = row["versions"] if row else {}
    if versions.get(event.aggregate_id, 0) >= event.version:
        return None
    return {  # versions first: a standby reads a row's progress from there (streams.store)
        "versions": {**versions, event.aggregate_id: event.version},
        "data": view.project(row["data"] if row else None, event, key),
        "occurred_at": event.occurred_at.isoformat(),
    }


def encode_row(view: View, key: str, row: Data) -> bytes:
    """The row as stored and sent on its changelog; RowTooLarge past MAX_ROW_BYTES."""
    raw = orjson.dumps(row)
    if len(raw) > MAX_ROW_BYTES:
        raise RowTooLarge(f"{view.table_name} row {key!r} would be {len(raw):,} bytes, over "
                          f"the {MAX_ROW_BYTES:,} a changelog record may hold")
    return raw


def encode_rows(view: View, rows: dict[str, Data]) -> tuple[dict[str, bytes], list[str]]:
    """The rows that fit, encoded, and the keys of those that do not (each keeps the row
    stored before)."""
    encoded, refused = {}, []
    for key, row in rows.items():
        try:
            encoded[key] = encode_row(view, key, row)
        except RowTooLarge:
            refused.append(key)
    return encoded, refused
