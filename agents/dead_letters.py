"""Parking what cannot be handled on the dead-letter topic: the record as it came, and why.

A dead letter keeps the original key and value bytes (base64), where they came from and
the error; its id derives from that origin, so parking the same record twice (after a
redelivery) gives the same dead letter.
"""

import base64
import logging
from collections import Counter
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from faust.types import EventT
from pydantic import Field

from streams import topics
from streams.envelopes import Envelope, encode, utc_now

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
    message = event.message
    letter = dead_letter(message.topic, message.partition, message.offset, message.key,
                         message.value, error, attempts)
    log.error("dead letter %s from %s[%s]@%s: %s", letter.dead_letter_id, message.topic,
              message.partition, message.offset, error)
    sent = await topics.dead_letters.send(key=message.key, value=encode(letter))
    await sent
    parked[message.topic] += 1
