"""Readers subscribed to a view row: the projection hands each new version to their mailboxes.

A mailbox holds a bounded number of pending versions and drops the oldest when a reader
falls behind, so a slow or vanished reader never slows the projection; it still ends up
with the latest state.
"""

import asyncio
from collections import defaultdict
from typing import Any

MAILBOX_SIZE = 256
CLOSED: dict[str, Any] = {}


class Subscriptions:
    def __init__(self) -> None:
        self._mailboxes: dict[tuple[str, str], set[asyncio.Queue[dict[str, Any]]]] = (
            defaultdict(set))

    def subscribe(self, view: str, key: str) -> asyncio.Queue[dict[str, Any]]:
        mailbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAILBOX_SIZE)
        self._mailboxes[view, key].add(mailbox)
        return mailbox

    def unsubscribe(self, view: str, key: str, mailbox: asyncio.Queue[dict[str, Any]]) -> None:
        readers = self._mailboxes.get((view, key))
        if readers is not None:
            readers.discard(mailbox)
            if not readers:
                del self._mailboxes[view, key]

    def publish(self, view: str, key: str, row: dict[str, Any]) -> None:
        for mailbox in self._mailboxes.get((view, key), ()):
            _deliver(mailbox, row)

    def close_all(self) -> None:
        """End every stream: after a rebalance a row may be owned, and updated, elsewhere."""
        for readers in self._mailboxes.values():
            for mailbox in readers:
                _deliver(mailbox, CLOSED)

    def count(self) -> int:
        return sum(len(readers) for readers in self._mailboxes.values())


def _deliver(mailbox: asyncio.Queue[dict[str, Any]], row: dict[str, Any]) -> None:
    if mailbox.full():
        mailbox.get_nowait()
    mailbox.put_nowait(row)


subscriptions = Subscriptions()
