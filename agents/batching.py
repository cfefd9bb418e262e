"""Taking a batch from `stream.take_events` apart: by key, and the last record per partition."""

from collections.abc import Hashable, Iterable
from typing import TypeVar

from faust import EventT

Key = TypeVar("Key", bound=Hashable)
Item = TypeVar("Item")


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
