"""Every registered view's Faust table, and reading rows from them.

A view keyed plainly is a RocksDB table of JSON rows; a windowed view is a Faust tumbling
windowed table over its events' time. Reads outside a stream (HTTP handlers) come here.
"""

from datetime import timedelta
from typing import Any

import orjson

from streams.app import app, bytes_table, settings
from tables.registry import VIEWS
from tables.view import View

WINDOW_RETENTION = timedelta(days=400)


def _table(view: View) -> Any:
    if view.window is None:
        return bytes_table(view.table_name)
    # JSON keys: a windowed table's keys are (key, (window start, window end)).
    return app.Table(view.table_name, partitions=settings.partitions, key_type=str,
                     value_type=bytes)


VIEW_TABLES = {name: _table(view) for name, view in VIEWS.items()}
WINDOWED = {
    name: VIEW_TABLES[name].tumbling(view.window, expires=WINDOW_RETENTION).relative_to_stream()
    for name, view in VIEWS.items() if view.window
}


def stored_row(view: View, key: str) -> bytes | None:
    """The row a projection folds into, inside a stream: the current window's, if windowed."""
    if not view.window:
        raw: bytes | None = VIEW_TABLES[view.name].get(key.encode())
        return raw
    try:
        current: bytes = WINDOWED[view.name][key].current()
    except KeyError:
        return None
    return current


def store_row(view: View, key: str, row: bytes) -> None:
    if view.window:
        WINDOWED[view.name][key] = row
    else:
        VIEW_TABLES[view.name][key.encode()] = row


def read_row(view_name: str, key: str) -> dict[str, Any] | None:
    raw = VIEW_TABLES[view_name].get(key.encode())
    return orjson.loads(raw) if raw is not None else None


def read_windows(view_name: str, key: str, starts: list[float]) -> list[dict[str, Any]]:
    """The rows of a windowed view for `key` in the windows starting at `starts`."""
    table = VIEW_TABLES[view_name]
    rows = []
    for start in starts:
        raw = table.get((key, table.window.current(start)))
        if raw is not None:
            rows.append(orjson.loads(raw))
    return rows
