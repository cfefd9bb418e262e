"""Faust's Kafka transport with a cheaper hand-off of each fetched message to the streams.

For every message, Faust's consumer races the delivery against a flow suspension with
`Service.wait_first`: four tasks and an `asyncio.wait` per message, which costs more than
everything a simple agent does with it. Here, while the flow runs, the delivery is awaited
directly inside a cancel scope; suspending the flow (a rebalance) expires every open scope at
once, which interrupts a delivery blocked on a full stream buffer just as the race did.

A message that is not delivered because the flow is suspended does not count as read.
Faust counted it, and when it drained a batch fetched before a rebalance after the seek to
the committed offsets, those messages were dropped as already read on refetch: commands
lost after a kill -9 during recovery (faust-streaming issues #216, #221).
"""

import asyncio
from collections import defaultdict
from collections.abc import Generator
from typing import Any, ClassVar

from faust.transport.drivers import aiokafka
from mode.services import WaitResults


class Suspension(asyncio.Event):
    """The consumer's suspend-flow event, whose wait() the hand-off can recognise."""

    def wait(self) -> "SuspensionWait":  # type: ignore[override]
        return SuspensionWait(self)


class SuspensionWait:
    def __init__(self, event: Suspension) -> None:
        self.event = event

    def __await__(self) -> Generator[Any, None, bool]:
        return asyncio.Event.wait(self.event).__await__()


class ReadOffsets(defaultdict[Any, int | None]):
    """The consumer's read offsets, which skip the one update following an undelivered
    message (the drain loop records the offset right after the hand-off returns)."""

    def __init__(self) -> None:
        super().__init__(lambda: None)
        self.undelivered = False

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        if self.undelivered:
            self.undelivered = False
            return
        super().__setitem__(tp, offset)


class Consumer(aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.suspend_flow = Suspension()
        self.deliveries: set[asyncio.Timeout] = set()
        self._read_offset = ReadOffsets()

    def stop_flow(self) -> None:
        super().stop_flow()
        now = asyncio.get_running_loop().time()
        for delivery in self.deliveries:
            delivery.reschedule(now)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if not (timeout is None and len(coros) == 2 and isinstance(coros[1], SuspensionWait)):
            return await super().wait_first(*coros, timeout=timeout)
        delivery, suspended = coros
        if not self.flow_active or self.should_stop:
            delivery.close()
            return self._undelivered(suspended)
        try:
            async with asyncio.timeout(None) as scope:
                self.deliveries.add(scope)
                try:
                    result = await delivery
                finally:
                    self.deliveries.discard(scope)
        except TimeoutError:
            return self._undelivered(suspended)
        return WaitResults([delivery], [result], False)

    def _undelivered(self, suspended: SuspensionWait) -> WaitResults:
        self._read_offset.undelivered = True
        return WaitResults([suspended], [None], False)


class Transport(aiokafka.Transport):
    Consumer: ClassVar[type[aiokafka.Consumer]] = Consumer
