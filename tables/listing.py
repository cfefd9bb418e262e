"""List queries over a view: the filters it declares, the opaque cursor, and merging the
partitions' pages into one page in key order."""

import base64
import binascii
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson

Data = dict[str, Any]
Found = tuple[str, Data]  # a row's key and its data

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_TEXT = 200  # characters, as a key in the contracts
MAX_NUMBER = 2**53
INDEX_SEPARATOR = "\0"  # between the indexed value and the row key: sorts before any character


class BadList(ValueError):
    """A list query that cannot be answered as asked; the message says which parameter."""


@dataclass(frozen=True)
class Filter:
    """One query parameter of a list: `row[field] == value` or `row[field] < value`."""

    name: str
    field: str
    test: Literal["equals", "below"]
    kind: type[str] | type[int]
    description: str
    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> str | int:
        if self.kind is int:
            try:
                number = int(raw)
            except ValueError:
                raise BadList(f"{self.name} must be an integer, not {raw!r}") from None
            if not -MAX_NUMBER <= number <= MAX_NUMBER:
                raise BadList(f"{self.name} must be between {-MAX_NUMBER} and {MAX_NUMBER}")
            return number
        if self.choices and raw not in self.choices:
            raise BadList(f"{self.name} must be one of {', '.join(self.choices)}, not {raw!r}")
        if not 1 <= len(raw) <= MAX_TEXT:
            raise BadList(f"{self.name} must be 1 to {MAX_TEXT} characters")
        return raw

    def matches(self, row: Data, value: str | int) -> bool:
        found = row.get(self.field)
        if self.test == "equals":
            return bool(found == value)
        return isinstance(found, int) and found < int(value)


@dataclass(frozen=True)
class Listing:
    """What `GET /views/{name}` may filter on, and which filter an index table serves.

    The index of filter `index` has one entry per row, keyed `value NUL row-key`, written
    by the projection beside the row; reads check every row against the filters, so an entry
    left behind costs a lookup, never a wrong answer."""

    filters: tuple[Filter, ...]
    index: str | None = None

    @property
    def indexed(self) -> Filter | None:
        return next((f for f in self.filters if f.name == self.index), None)

    def index_key(self, data: Data | None, key: str) -> str | None:
        indexed = self.indexed
        if indexed is None or data is None or data.get(indexed.field) is None:
            return None
        return f"{data[indexed.field]}{INDEX_SEPARATOR}{key}"

    def matches(self, data: Data, wanted: Mapping[str, str | int]) -> bool:
        return all(f.matches(data, wanted[f.name]) for f in self.filters if f.name in wanted)


@dataclass(frozen=True)
class Query:
    """A parsed list request: the filters' values, where to start, how many rows."""

    wanted: dict[str, str | int]
    after: str | None
    limit: int


def parse(listing: Listing, params: Mapping[str, str], extra: Iterable[str] = ()) -> Query:
    """A list request's parameters, checked; `extra` names the parameters read elsewhere."""
    known = {f.name for f in listing.filters} | {"limit", "cursor", *extra}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadList(f"unknown parameter {unknown[0]!r}; "
                      f"this list takes {', '.join(sorted(known))}")
    wanted = {f.name: f.parse(params[f.name]) for f in listing.filters if f.name in params}
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        raise BadList(f"limit must be an integer, not {raw_limit!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadList(f"limit must be between 1 and {MAX_LIMIT}")
    after = decode_cursor(params["cursor"]) if "cursor" in params else None
    return Query(wanted, after, limit)


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": key})).decode().rstrip("=")


def decode_cursor(text: str) -> str:
    try:
        document = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        key = document["after"]
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, KeyError):
        raise BadList("cursor is not one this service issued") from None
    if not isinstance(key, str):
        raise BadList("cursor is not one this service issued")
    return key


def select(rows: Iterable[Found], listing: Listing, query: Query) -> tuple[list[Found], bool]:
    """From one partition's rows in key order: the first `limit` past the cursor that match,
    and whether any more may follow."""
    found: list[Found] = []
    for key, data in rows:
        if query.after is not None and key <= query.after:
            continue
        if not listing.matches(data, query.wanted):
            continue
        if len(found) == query.limit:
            return found, True
        found.append((key, data))
    return found, False


def merge(pages: Iterable[tuple[list[Found], bool]], limit: int) -> tuple[list[Found], str | None]:
    """One page from every partition's page (each in key order, each its first `limit` past
    the cursor): the first `limit` rows overall, and the cursor after them if any remain.

    A row left out sorts after the page's last: a partition that returned `limit` rows has
    its unreturned ones after all of them, and the page ends no later than its last."""
    pages = list(pages)
    merged = list(heapq.merge(*(rows for rows, _ in pages), key=lambda found: found[0]))
    more = len(merged) > limit or any(more for _, more in pages)
    page = merged[:limit]
    return page, encode_cursor(page[-1][0]) if more and page else None


@dataclass(frozen=True)
class Ranking:
    """What `GET /views/{name}/top` ranks: a windowed view's rows summed per `key` over the
    windows in a range, highest `by` first (ties by key); `sums` are ints or decimal strings."""

    key: str
    by: str
    sums: tuple[str, ...]


def _add(total: Any, value: Any) -> Any:
    if isinstance(value, int):
        return int(total or 0) + value
    return str(Decimal(str(total or 0)) + Decimal(str(value)))


def totals(rows: Iterable[Data], ranking: Ranking) -> list[Data]:
    """Rows summed per key, in rank order."""
    summed: dict[str, Data] = {}
    for row in rows:
        key = row[ranking.key]
        total = summed.setdefault(key, {ranking.key: key})
        for field in ranking.sums:
            total[field] = _add(total.get(field), row[field])
    return ranked(summed.values(), ranking, len(summed))


def ranked(rows: Iterable[Data], ranking: Ranking, n: int) -> list[Data]:
    """The first `n` rows by rank; with each key's rows all in one partition, the first `n`
    of every partition's first `n` are the first `n` overall."""
    return sorted(rows, key=lambda row: (-Decimal(str(row[ranking.by])), row[ranking.key]))[:n]
