"""Every view as the fold of its projector over an event log: what `verify` compares against."""

from collections.abc import Iterable

from streams.envelopes import Event
from tables.registry import VIEWS
from tables.view import Data, View, apply
from tables.windows import window_key


def row_key(view: View, key: str, event: Event) -> str:
    """A row's key: the view's key, and for a windowed view the start of the event's window."""
    return window_key(key, view.window_start(event)) if view.window else key


def fold(events: Iterable[Event], unfoldable: list[str] | None = None,
         views: dict[str, View] | None = None) -> dict[str, dict[str, Data]]:
    """Every view's rows (by default of the resident versions; `views` names others); an
    event a projector cannot fold is skipped, as the workers park it, and described in
    `unfoldable`."""
    chosen = views or VIEWS
    rows: dict[str, dict[str, Data]] = {name: {} for name in chosen}
    for event in events:
        for name, view in chosen.items():
            if event.type not in view.handles:
                continue
            for key in view.keys(event):
                slot = row_key(view, key, event)
                try:
                    row = apply(view, rows[name].get(slot), event, key)
                except ValueError as exc:
                    if unfoldable is not None:
                        unfoldable.append(f"{name} cannot fold {event.event_id}: {exc}")
                    continue
                if row is not None:
                    rows[name][slot] = row
    return rows


def version_problems(events: Iterable[Event]) -> list[str]:
    """Gaps in an aggregate's versions, or two different events claiming one version."""
    seen: dict[tuple[str, int], str] = {}
    problems = []
    for event in events:
        slot = (event.aggregate_id, event.version)
        if seen.setdefault(slot, str(event.event_id)) != str(event.event_id):
            problems.append(f"{event.aggregate_id} has two events at version {event.version}")
    versions: dict[str, set[int]] = {}
    for aggregate_id, version in seen:
        versions.setdefault(aggregate_id, set()).add(version)
    for aggregate_id, found in sorted(versions.items()):
        if found != set(range(1, max(found) + 1)):
            problems.append(f"{aggregate_id} has version gaps: {sorted(found)}")
    return problems


def listed(view: View, rows: dict[str, Data]) -> list[tuple[dict[str, str], list[Data]]]:
    """What a view's list query must answer, as (parameters, rows in key order): the whole
    view, and each value of its indexed filter (each status of the orders)."""
    if view.listing is None:
        return []
    ordered = sorted(rows.items())
    expected: list[tuple[dict[str, str], list[Data]]] = [({}, [row["data"] for _, row in ordered])]
    indexed = view.listing.indexed
    if indexed is not None:
        values = sorted(set(indexed.choices) | {str(row["data"].get(indexed.field))
                                                 for _, row in ordered})
        for value in values:
            wanted = {indexed.name: value}
            expected.append((wanted, [row["data"] for _, row in ordered
                                      if view.listing.matches(row["data"], wanted)]))
    return expected
