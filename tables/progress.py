"""How far each projection has read its input, and waiters woken as it moves on.

A projection reports every record it has folded; a reader waits on a condition over that
progress (or over a row) and is woken by the projection itself, never by polling.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable


class Signal:
    """Wakes everyone waiting when fired; cheap to fire when nobody waits."""

    def __init__(self) -> None:
        self._fired = asyncio.Event()

    def fire(self) -> None:
        self._fired.set()
        self._fired = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._fired.wait(), remaining)
            except TimeoutError:
                return condition()
        return True


class Progress:
    """Per projection and input partition: the last offset folded and when its event happened.

    For a view fed through a repartition topic, `sources` also records how far along each
    partition of the event log the records it has folded reach.
    """

    def __init__(self) -> None:
        self.applied: dict[tuple[str, int], int] = {}
        self.event_time: dict[tuple[str, int], float] = {}
        self.sources: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
        self.signals: dict[tuple[str, int], Signal] = defaultdict(Signal)
        self.listeners: list[Callable[[str, list[float]], None]] = []
        """Each is told a projection's name and the event times of the records it folded."""

    def folded(self, name: str, partition: int, offset: int, event_time: float) -> None:
        """Record that `name` folded the record at `offset`, appended at `event_time`."""
        self.applied[name, partition] = offset
        self.event_time[name, partition] = event_time
        self.signals[name, partition].fire()
        for listener in self.listeners:
            listener(name, [event_time])

    def folded_batch(self, name: str, records: Iterable[tuple[int, int, float, bool]]) -> None:
        """Record a batch of (partition, offset, event_time, touched) read by `name`: the
        listeners are told the event time of each record that touched the view, once per
        batch; the last record per partition is how far the view has got; waiters wake once."""
        last: dict[int, tuple[int, float]] = {}
        touching = []
        for partition, offset, event_time, touched in records:
            if touched:
                touching.append(event_time)
            last[partition] = (offset, event_time)
        if touching:
            for listener in self.listeners:
                listener(name, touching)
        for partition, (offset, event_time) in last.items():
            self.applied[name, partition] = offset
            self.event_time[name, partition] = event_time
            self.signals[name, partition].fire()

    def passed(self, name: str, partition: int, offset: int) -> None:
        """Record that `name` is done with a record at `offset` that had nothing to fold."""
        self.applied[name, partition] = offset

    def reached(self, name: str, partition: int, source_partition: int, offset: int) -> None:
        known = self.sources[name, partition]
        if offset > known.get(source_partition, -1):
            known[source_partition] = offset
            self.signals[name, partition].fire()

    async def wait_until(self, name: str, partition: int, condition: Callable[[], bool],
                         timeout: float) -> bool:
        return await self.signals[name, partition].wait_until(condition, timeout)


progress = Progress()
