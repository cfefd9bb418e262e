"""Folding a batch of events into one view: per key, in order, one row write per key.

Every view goes through here, whether its events come straight from the event log or
through a repartition topic.
"""

import logging

import orjson
from faust import EventT
from pydantic import ValidationError

from agents.batching import grouped
from agents.dead_letters import park
from streams.envelopes import Event, parse_event
from streams.faust_patches import as_current
from tables.storage import (
    flush_rows,
    rewrite_index_entry,
    store_index,
    store_row,
    stored_row,
)
from tables.subscriptions import subscriptions
from tables.view import View, apply, encode_row

log = logging.getLogger(__name__)
Parsed = tuple[EventT, Event]


async def read(record: EventT) -> Event | None:
    """The event in a record, or None once an unreadable record is parked."""
    try:
        return parse_event(record.value)
    except ValidationError as exc:
        await park(record, f"unreadable event: {exc}")
        return None


async def fold(view: View, keyed: list[tuple[str, Parsed]]) -> None:
    """Fold each key's events in order and write each key (each window of a windowed view)
    once: one row and one changelog record per key per batch, flushed before it returns."""
    groups = grouped(((key, view.window_start(event) if view.window else None), (record, event))
                     for key, (record, event) in keyed)
    try:
        for (key, _), items in groups.items():
            await _fold_key(view, key, items)
    finally:
        await flush_rows(view)


async def _fold_key(view: View, key: str, items: list[Parsed]) -> None:
    as_current(items[-1][0])
    partition = items[-1][0].message.partition
    stored = stored_row(view, key, partition)
    row = before = orjson.loads(stored) if stored is not None else None
    versions = []
    redelivered = False
    for record, event in items:
        try:
            folded = apply(view, row, event, key)
        except Exception as exc:
            # One event a projector cannot fold (a bug, or a log written by hand) must not
            # stop the view for every other key.
            log.exception("%s could not fold event %s", view.table_name, event.event_id)
            await park(record, f"{view.table_name} could not fold it: "
                               f"{type(exc).__name__}: {exc}")
            continue
        if folded is None:
            redelivered = True
        else:
            row = folded
            versions.append(folded)
    if not versions:
        if redelivered and stored is not None:
            # A worker killed before its records were all acknowledged can leave a changelog
            # with the row but not its index entry (they go out in separate batches), or
            # RocksDB with the row and its entry but not their records; the batch it folds
            # again changes nothing. Writing the row and its index entry again sends both.
            if view.listing is not None and view.listing.index is not None:
                rewrite_index_entry(view, row["data"], key)
            store_row(view, key, stored, partition)
        return
    try:
        raw = encode_row(view, key, row)
        if view.listing is not None and view.listing.index is not None:
            # The index first: a batch redelivered after a crash in between finds the row as
            # it was and moves the entry again; the other way round it would find nothing to do.
            store_index(view, before and before["data"], row["data"], key)
        store_row(view, key, raw, partition)
    except Exception as exc:  # a row that cannot be stored parks its key's events, no more
        log.exception("%s could not store row %r", view.table_name, key)
        for record, _ in items:
            await park(record, f"{view.table_name} could not store the row: "
                               f"{type(exc).__name__}: {exc}")
        return
    for version in versions:
        subscriptions.publish(view.name, key, version)
