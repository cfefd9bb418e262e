"""Parking what cannot be handled on the dead-letter topic (see `streams.dead_letters`), and
handling a batch whole or parking it."""

import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace

from faust.types import EventT

from agents.retry import BACKOFF, GaveUp, retrying
from streams import topics
from streams.app import ensure_member, leave_unhandled
from streams.dead_letters import dead_letter
from streams.envelopes import encode
from streams.membership import Fenced

log = logging.getLogger(__name__)
parked: Counter[str] = Counter()  # by source topic, since this worker started


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
