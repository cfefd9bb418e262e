"""Comparing two versions of a view row by row: keys in one only, and per-field differences
outside the fields the newer version declares as new."""

from collections.abc import Iterator
from typing import Any

from tables.view import Data, View


def level(a: Data | None, b: Data | None) -> bool:
    """Whether two rows of one key have folded the same events: only then can their fields
    be told apart from a fold still under way in one version."""
    return a is not None and b is not None and a["versions"] == b["versions"]


def row_differences(key: str, old: View, new: View, a: Data | None,
                    b: Data | None) -> Iterator[str]:
    """What differs between the rows of `key` in two versions (stored rows: data, versions,
    occurred_at)."""
    if a is None or b is None:
        yield f"{key}: only in v{old.version if b is None else new.version}"
        return
    if a["versions"] != b["versions"]:
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


class _Missing:
    def __repr__(self) -> str:
        return "(no such field)"


_MISSING = _Missing()


def _show(value: object) -> str:
    return repr(value)[:200]
