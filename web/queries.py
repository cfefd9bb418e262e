"""Reading query parameters: pages of a list, and time ranges of a windowed view."""

from datetime import UTC, datetime, timedelta
from typing import Any

from multidict import MultiMapping

DEFAULT_PAGE, MAX_PAGE = 50, 500
DEFAULT_RANGE, MAX_RANGE = timedelta(hours=24), timedelta(days=31)


class BadQuery(ValueError):
    """A query parameter that cannot be used; its message says which and why."""


def integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise BadQuery(f"{name} must be between {low} and {high}")
    return value


def page_bounds(query: MultiMapping[str]) -> tuple[int, int]:
    """The page asked for: limit and offset."""
    return integer(query, "limit", DEFAULT_PAGE, 1, MAX_PAGE), integer(query, "offset", 0, 0, 10**9)


def page(items: list[Any], limit: int, offset: int) -> tuple[list[Any], dict[str, int]]:
    return items[offset:offset + limit], {"limit": limit, "offset": offset, "total": len(items)}


def _time(query: MultiMapping[str], name: str, default: datetime) -> datetime:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"{name} must be an ISO 8601 time, not {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def window_starts(query: MultiMapping[str], window: int,
                  now: datetime | None = None) -> tuple[list[float], datetime, datetime]:
    """The starts of the windows overlapping [from, to), by default the last 24 hours."""
    end = _time(query, "to", now or datetime.now(UTC))
    try:
        begin = _time(query, "from", end - DEFAULT_RANGE)
        if not timedelta(0) <= end - begin <= MAX_RANGE:
            raise BadQuery(f"from must be before to, at most {MAX_RANGE.days} days apart")
        first = begin.timestamp() - begin.timestamp() % window
    except OverflowError:
        raise BadQuery("from and to must be times between the years 1 and 9999") from None
    starts = [first + window * n for n in range(int((end.timestamp() - first) // window) + 1)]
    return [s for s in starts if s < end.timestamp()], begin, end


def seconds(query: MultiMapping[str], name: str, default: float, most: float) -> float:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 <= value <= most:
        raise BadQuery(f"{name} must be between 0 and {most} seconds")
    return value


def flag(query: MultiMapping[str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false", "1", "0"):
        raise BadQuery(f"{name} must be true or false, not {raw!r}")
    return raw.lower() in ("true", "1")
