"""The dead-letter topic's records: a record that could not be handled, as it came, and why;
and the resolution appended once it has been replayed or discarded.

A dead letter keeps the original key and value bytes (base64), where they came from and
the error; its id derives from that origin, so parking the same record twice (after a
redelivery) gives the same dead letter.
"""

import base64
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import Field, ValidationError

from streams.envelopes import Envelope, encode, utc_now

log = logging.getLogger(__name__)
Send = Callable[[str, bytes | None, bytes], Awaitable[object]]
"""Produce (topic, key, value) and return once the broker has acknowledged it."""


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


async def resolve(letters: list[DeadLetter], how: Literal["replayed", "discarded"],
                  dead_letter_topic: str, send: Send) -> None:
    """Replay each parked record as it came, to the topic it came from (or not, when
    discarding), then mark it resolved.

    Replaying twice changes nothing: commands are deduplicated by command id, events by
    aggregate version, results by command id."""
    for letter in letters:
        if how == "replayed":
            key, value = letter.original()
            await send(letter.source_topic, key, value)
        marker = Resolution(resolved=letter.dead_letter_id, how=how, resolved_at=utc_now())
        await send(dead_letter_topic, str(letter.dead_letter_id).encode(), encode(marker))


class UnknownLetters(LookupError):
    """Some asked-for dead letters do not exist."""


def choose(ledger: Ledger, ids: list[str] | None) -> list[DeadLetter]:
    """The letters named by `ids`, or every waiting one when `ids` is None."""
    if ids is None:
        return ledger.waiting()
    chosen = [letter for letter in ledger.letters.values() if str(letter.dead_letter_id) in ids]
    unknown = set(ids) - {str(letter.dead_letter_id) for letter in chosen}
    if unknown:
        raise UnknownLetters(f"no such dead letter: {', '.join(sorted(unknown))}")
    return chosen
