"""What a read view is, and the idempotent fold of one event into one of its rows."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.envelopes import Event

Data = dict[str, Any]


@dataclass(frozen=True)
class View:
    name: str
    version: int
    handles: frozenset[str]
    key: Callable[[Event], str]
    project: Callable[[Data | None, Event], Data]
    by_aggregate: bool = True

    @property
    def table_name(self) -> str:
        return f"{self.name}-v{self.version}"


def apply(view: View, row: Data | None, event: Event) -> Data | None:
    """Fold one event into a row; None when the row already reflects it."""
    versions: dict[str, int] = row["versions"] if row else {}
    if versions.get(event.aggregate_id, 0) >= event.version:
        return None
    return {
        "data": view.project(row["data"] if row else None, event),
        "versions": {**versions, event.aggregate_id: event.version},
        "occurred_at": event.occurred_at.isoformat(),
    }
