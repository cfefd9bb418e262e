"""Parking what cannot be handled on the dead-letter topic: the record as it came, and why.

A dead letter keeps the original key and value bytes (base64), where they came from and
the error; its id derives from that origin, so parking the same record twice (after a
redelivery) gives the same dead letter.
"""

import base64
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from faust.types import EventT
from pydantic import Field, ValidationError

from agents.retry import BACKOFF, GaveUp, retrying
from streams import topics
from streams.app import ensure_member, leave_unhandled
from streams.envelopes import Envelope, encode, utc_now
from streams.membership import Fenced

log = logging.getLogger(__name__)
parked: Counter[str] = Counter()  # by source topic, since this worker started


class DeadLetter(Envelope):
    dead_letter_id: UUID
    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None = Field(description="the original key, base64")
    value: str = Field(description="the original value, base64")
    error: str
    attempts: int
    parked_at: datetime

    def original(self) -> tuple[bytes | None, bytes]:
        key = base64.b64decode(self.key) if self.key is not None else None
        return key, base64.b64decode(self.value)


class Resolution(Envelope):
    """Appended to the dead-letter topic when a dead letter has been dealt with."""

    resolved: UUID
    how: Literal["replayed", "discarded"]
    resolved_at: datetime


class Ledger:
    """Which dead letters wait: parked, and neither replayed nor discarded since."""

    def __init__(self) -> None:
        self.letters: dict[UUID, DeadLetter] = {}
        self.resolved: set[UUID] = set()

    def observe(self, value: bytes) -> None:
        try:
            letter = DeadLetter.model_validate_json(value)
        except ValidationError:
            try:
                self.resolved.add(Resolution.model_validate_json(value).resolved)
            except ValidationError:
                log.warning("ignoring a record on the dead-letter topic that is neither a dead "
                            "letter nor a resolution: %r", value[:200])
            return
        self.letters.setdefault(letter.dead_letter_id, letter)

    def waiting(self) -> list[DeadLetter]:
        return [letter for key, letter in self.letters.items() if key not in self.resolved]


def dead_letter(topic: str, partition: int, offset: int, key: bytes | None, value: bytes,
                error: str, attempts: int = 1) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=uuid5(NAMESPACE_URL, f"kafka:{topic}/{partition}/{offset}"),
        source_topic=topic, source_partition=partition, source_offset=offset,
        key=base64.b64encode(key).decode() if key is not None else None,
        value=base64.b64encode(value).decode(), error=error[:4000], attempts=attempts,
        parked_at=utc_now(),
    )


async def park(event: EventT, error: str, attempts: int = 1) -> None:
    """Park the record, or keep trying while the broker cannot take it: a record that is
    neither handled nor parked must not be acknowledged."""
    message = event.message
    letter = dead_letter(message.topic, message.partition, message.offset, message.key,
                         message.value, error, attempts)
    log.error("dead letter %s from %s[%s]@%s: %s", letter.dead_letter_id, message.topic,
              message.partition, message.offset, error)
    value = encode(letter)

    async def send() -> None:
        await (await topics.dead_letters.send(key=message.key, value=value))

    await retrying("park", send, replace(BACKOFF, attempts=sys.maxsize))
    parked[message.topic] += 1


async def handle_batch_or_park(what: str, records: list[EventT],
                               handler: Callable[[], Awaitable[None]]) -> None:
    """Handle a batch whole, retrying transient failures; park every record of it when they
    persist or when handling fails otherwise. A worker no longer sure of its partitions leaves
    the batch unhandled (see `streams.membership`)."""
    try:
        await ensure_member()
        await retrying(what, handler)
    except Fenced:
        leave_unhandled(records)
    except GaveUp as exc:
        for record in records:
            await park(record, f"{what} kept failing: {exc}", exc.attempts)
    except Exception as exc:
        log.exception("%s failed", what)
        for record in records:
            await park(record, f"{what} failed: {type(exc).__name__}: {exc}")
