"""A windowed view's rows outside Faust's windowed table (a built version): one row per key
and window, keyed `<key>@<window start, ISO 8601>`, and the expiry the resident table has."""

from datetime import UTC, datetime, timedelta

import orjson

from streams.envelopes import Event
from tables.view import View

WINDOW_RETENTION = timedelta(days=400)
"""The resident windowed table's `expires`: Faust deletes a window once its end is this long
before the wall clock. A built version does not fold into such a window nor serve it."""


def window_key(key: str, start: datetime) -> str:
    return f"{key}@{start.isoformat()}"


def start_at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def split(row_key: str) -> tuple[str, float]:
    """A built version's row key as (the view's key, the window's start in epoch seconds)."""
    key, _, start = row_key.rpartition("@")
    return key, datetime.fromisoformat(start).timestamp()


def from_faust(raw_key: str) -> str:
    """The row key of a resident windowed table's key (JSON `[key, [start, end]]`); any other
    key as it is."""
    try:
        key, (start, _) = orjson.loads(raw_key)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return raw_key
    return window_key(str(key), start_at(float(start)))


def expired(view: View, start: float, now: float) -> bool:
    assert view.window is not None
    return start + view.window <= now - WINDOW_RETENTION.total_seconds()


def built_slot(view: View, key: str, event: Event, now: float) -> str | None:
    """The row a built version folds the event into for `key`: the key itself, or for a
    windowed view the row of the event's window (None once that window has expired)."""
    if view.window is None:
        return key
    start = view.window_start(event)
    return None if expired(view, start.timestamp(), now) else window_key(key, start)
