"""Retrying transient broker failures with bounded exponential backoff, then parking.

A handler is re-run whole: every handler here is idempotent (deterministic event ids,
commands deduplicated by id, events by aggregate version), so a retry after a send that
did in fact land only repeats records that readers already skip.
"""

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from aiokafka.errors import KafkaError, KafkaTimeoutError

from streams.app import settings

log = logging.getLogger(__name__)
Result = TypeVar("Result")
retried: Counter[str] = Counter()  # by what was retried, since this worker started


@dataclass(frozen=True)
class Backoff:
    attempts: int
    base: float
    cap: float

    def delays(self) -> Iterator[float]:
        """The pause before each retry: doubling from `base`, at most `cap`, jittered down
        by up to half so that workers failing together do not retry together."""
        for retry in range(self.attempts - 1):
            ceiling = min(self.cap, self.base * 2**retry)
            yield ceiling * random.uniform(0.5, 1.0)


BACKOFF = Backoff(settings.retry_attempts, settings.retry_base, settings.retry_cap)


class GaveUp(Exception):
    def __init__(self, cause: BaseException, attempts: int) -> None:
        super().__init__(f"{type(cause).__name__}: {cause} (after {attempts} attempts)")
        self.cause = cause
        self.attempts = attempts


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, KafkaTimeoutError | TimeoutError):
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)


async def retrying(what: str, operation: Callable[[], Awaitable[Result]],
                   backoff: Backoff = BACKOFF) -> Result:
    """Run `operation`, again after each transient failure; GaveUp once attempts run out.
    Any other exception passes straight through."""
    delays = backoff.delays()
    attempt = 1
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise GaveUp(exc, attempt) from exc
            retried[what] += 1
            log.warning("%s failed (attempt %s of %s), retrying in %.2fs: %r", what, attempt,
                        backoff.attempts, delay, exc)
            await asyncio.sleep(delay)
            attempt += 1
