"""Comparing two versions of a view row by row: keys in one only, and per-field differences
outside the fields the newer version declares as new."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tables.view import Data, View


def row_differences(key: str, old: View, new: View, a: Data | None, b: Data | None,
                    since: datetime) -> Iterator[str]:
    """What differs between the rows of `key` in two versions (stored rows: data, versions,
    occurred_at). Rows that moved after `since` (the log's end when the comparison began) are
    in flight, not different."""
    if a is None or b is None:
        present = a or b
        assert present is not None
        if _moved(present, since):
            return
        yield f"{key}: only in v{old.version if b is None else new.version}"
        return
    if a["versions"] != b["versions"]:
        if not (_moved(a, since) or _moved(b, since)):
            yield (f"{key}: folds different events: v{old.version} {a['versions']}, "
                   f"v{new.version} {b['versions']}")
        return
    yield from field_differences(key, old, new, a["data"], b["data"])


def field_differences(key: str, old: View, new: View, a: dict[str, Any],
                      b: dict[str, Any]) -> Iterator[str]:
    expected = (new.new_fields - a.keys()) | (old.new_fields - b.keys())
    for field in sorted((a.keys() | b.keys()) - expected):
        if a.get(field, _MISSING) != b.get(field, _MISSING):
            yield (f"{key}: {field}: v{old.version} {_show(a.get(field, _MISSING))}, "
                   f"v{new.version} {_show(b.get(field, _MISSING))}")


def _moved(row: Data, since: datetime) -> bool:
    return datetime.fromisoformat(row["occurred_at"]) > since


class _Missing:
    def __repr__(self) -> str:
        return "(no such field)"


_MISSING = _Missing()


def _show(value: object) -> str:
    return repr(value)[:200]
