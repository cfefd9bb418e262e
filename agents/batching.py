"""Folding a batch of records from `stream.take_events`, where Faust sets no current event.

A table read or write picks its partition's store and changelog partition from Faust's
current event; inside a batch we name that event ourselves, per key.
"""

import weakref
from collections.abc import Hashable, Iterable
from typing import TypeVar

from faust import EventT
from faust import streams as faust_streams

Key = TypeVar("Key", bound=Hashable)
Item = TypeVar("Item")


def as_current(event: EventT) -> None:
    """Make `event` the current event for the table operations that follow in this task."""
    faust_streams._current_event.set(weakref.ref(event))


def last_per_partition(records: Iterable[EventT]) -> dict[int, EventT]:
    """The last record of each partition, in the order the partitions first appear."""
    last: dict[int, EventT] = {}
    for record in records:
        last[record.message.partition] = record
    return last


def grouped(items: Iterable[tuple[Key, Item]]) -> dict[Key, list[Item]]:
    """Items by key, each key's items in their original order."""
    groups: dict[Key, list[Item]] = {}
    for key, item in items:
        groups.setdefault(key, []).append(item)
    return groups
