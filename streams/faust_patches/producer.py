"""The producer: flushes that wait for every record, sends again, fencing.

Flushing. Faust's producer flush before a commit could return with changelog records still
in its buffer; here it waits for every one (`Buffer`). Rows written behind (tables.storage)
hand their changelog records to aiokafka as whole batches (`Producer.send_records`); the
flush Faust awaits before each commit waits for those too, and raises if one failed, so no
offset is committed past a row whose changelog record was lost. A batch failing with a
retriable error (a changelog created moments before, with no leader yet) is sent again with
its keys' values as stored then, so a later batch for the same keys stays the last word. A
command's result (`RESENT_TOPICS`), which Faust sends without awaiting, is sent again the same
way, and the flush waits for it: before, a result lost so was a command answered by nobody.
Any other send that fails is logged with its topic.

Fencing. A worker stopped past its session (SIGSTOP) is out of its group; its consumer
watches for such a stop (`streams.membership`), and its producer then refuses every record,
the ones already in aiokafka's accumulator included, until the worker is assigned again:
they would land after the new owners' records.
"""

import asyncio
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
)
from contextlib import suppress
from functools import partial
from typing import Any

from faust.transport.drivers import aiokafka
from faust.transport.producer import ProducerBuffer

from streams.membership import Fenced
from streams.sending import batches

log = logging.getLogger(__name__)


class Buffer(ProducerBuffer):
    """Faust's producer buffer, whose flush returns only once every record put in it is with
    aiokafka. Faust's gives up after 0.1 s in which no record went out, and does not count
    the record being handed over: under load a commit followed a flush that left changelog
    records behind, so the offsets of folded events were committed while the rows they
    produced were not yet sent, and lost if the worker died or was stopped then (a view row
    missing after a takeover: "OrderCancelled before OrderPlaced")."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sending = 0

    async def _send_pending(self, fut: Any) -> None:
        self.sending += 1
        try:
            await super()._send_pending(fut)
        finally:
            self.sending -= 1

    async def flush(self) -> None:
        while self.size or self.sending:
            if self.state != "running":
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)


RESEND_AFTER = 0.1  # seconds, as aiokafka's own retry backoff
RESENT_TOPICS: set[str] = set()
"""Topics whose records may be sent again in any order (each is whole by itself, e.g. a
command's result, keyed by its command id): one that fails with a retriable error is."""
Current = Callable[[list[bytes]], list[bytes | None]]


def _refused(topic: str) -> asyncio.Future[Any]:
    refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    refused.set_exception(Fenced(f"not sent to {topic}: this worker is out of its group"))
    # Most sends (changelogs, results) are never awaited: without this each logs "Future
    # exception was never retrieved" with a traceback.
    refused.add_done_callback(lambda future: future.exception())
    return refused


def _log_failed(topic: str, sent: Any) -> None:
    """Faust does not await most of its sends: a failure would go unseen but for a "never
    retrieved" line at garbage collection, without the topic."""
    error = None if sent.cancelled() else sent.exception()
    if error is not None and not isinstance(error, Fenced):
        log.error("a record for %s was not sent: %r", topic, error)


class Producer(aiokafka.Producer):
    """Faust's producer on the buffer above, refusing records while this worker is out of
    its group after a stop: a record handed over is answered with a `Fenced` failure, and the
    batches waiting in aiokafka's accumulator fail the same way instead of being sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusing = False
        if not self.app.conf.producer_threaded:
            self.buffer = Buffer(loop=self.loop, beacon=self.beacon)
            self.buffer.app = self.app
        self.failures: list[BaseException] = []
        self.unsettled: set[asyncio.Future[Any]] = set()

    async def send_records(self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes]],
                           current: Current | None = None,
                           ) -> list[tuple[Any, int]]:
        """Hand `records` for one partition to aiokafka as whole batches, without Faust's future,
        buffer entry and callback per record: each batch's future (resolving to its first
        offset) and its record count. A batch that fails (but for `Fenced`) makes the next
        `flush`, which Faust's consumer awaits before every commit, raise.

        With `current` (the values stored now for a batch's keys, None for none), a batch that
        fails with a retriable error, such as no leader yet for a changelog created moments
        ago, is sent again with its keys' current values: a later batch for those keys may
        have landed meanwhile, and its values must stay the last."""
        if self.stopped():
            return [(_refused(topic), 0)]
        producer = self._ensure_producer()
        return [await self._send_batch(producer, batch, keys, topic, partition, current)
                for batch, keys in batches(producer, records)]

    async def send_whole(self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes]],
                         ) -> list[tuple[Any, int]]:
        """`send_records` for records whose sender awaits them itself (a command batch's
        events): a failed batch fails its own future alone, not the next `flush`."""
        if self.stopped():
            return [(_refused(topic), 0)]
        producer = self._ensure_producer()
        sent = []
        for batch, keys in batches(producer, records):
            batch.close()
            sent.append((await producer.send_batch(batch, topic, partition=partition), len(keys)))
        return sent

    async def _send_batch(self, producer: Any, batch: Any, keys: list[bytes], topic: str,
                          partition: int, current: Current | None) -> tuple[Any, int]:
        batch.close()  # nothing else may join it: its offsets are counted from its first

        async def again() -> Any:
            batch = producer.create_batch()
            assert current is not None
            for key, value in zip(keys, current(keys), strict=True):
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise RuntimeError(f"{len(keys)} changelog records no longer fit one batch")
            batch.close()
            return await producer.send_batch(batch, topic, partition=partition)

        attempt = await producer.send_batch(batch, topic, partition=partition)
        what = f"a batch of {len(keys)} changelog records for {topic}[{partition}]"
        return self._settling(attempt, again if current is not None else None,
                              what), batch.record_count()

    def _settling(self, attempt: Any, again: Callable[[], Awaitable[Any]] | None,
                  what: str) -> asyncio.Future[Any]:
        """A future for what `attempt` sends, which `flush` waits for: settled by the attempt,
        or, if it fails with a retriable error and `again` is given, by `again()`'s."""
        settled: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.unsettled.add(settled)
        settled.add_done_callback(self._settled)
        attempt.add_done_callback(partial(self._attempted, settled, again, what))
        return settled

    def _attempted(self, settled: asyncio.Future[Any],
                   again: Callable[[], Awaitable[Any]] | None, what: str, attempt: Any) -> None:
        if settled.done():
            return
        if attempt.cancelled():
            settled.cancel()
            return
        error = attempt.exception()
        if error is None:
            settled.set_result(attempt.result())
        elif again is not None and getattr(error, "retriable", False) and not self.stopped():
            log.warning("%s failed (%r): sending it again", what, error)
            task = asyncio.ensure_future(self._again(settled, again, what))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
        else:
            settled.set_exception(error)

    async def _again(self, settled: asyncio.Future[Any], again: Callable[[], Awaitable[Any]],
                     what: str) -> None:
        try:
            await asyncio.sleep(RESEND_AFTER)
            attempt = await again()
            attempt.add_done_callback(partial(self._attempted, settled, again, what))
        except asyncio.CancelledError:
            settled.cancel()
            raise
        except Exception as error:
            if not settled.done():
                settled.set_exception(error)
            raise

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self.unsettled.discard(future)
        exception = None if future.cancelled() else future.exception()
        if future.cancelled() or (exception is not None and not isinstance(exception, Fenced)):
            self.failures.append(exception or asyncio.CancelledError())

    async def flush(self) -> None:
        await super().flush()
        while self.unsettled:
            await asyncio.wait(set(self.unsettled))
        if self.failures:
            failures, self.failures = self.failures, []
            raise RuntimeError(f"{len(failures)} sends (changelog batches, results) failed, "
                               f"the first: {failures[0]!r}") from failures[0]

    def stopped(self) -> bool:
        membership = getattr(self.app.consumer, "membership", None)
        return membership is not None and bool(membership.is_stopped())

    def _new_producer(self, transactional_id: str | None = None) -> Any:
        producer = super()._new_producer(transactional_id)
        fence_accumulator(producer._message_accumulator, self.stopped)
        track_every_topic(producer.client)
        return producer

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any, *,
                   transactional_id: str | None = None) -> Awaitable[Any]:
        if self.stopped():
            if not self.refusing:
                log.warning("out of the group after a stop: refusing records until the next "
                            "assignment")
            self.refusing = True
            return _refused(topic)
        self.refusing = False
        sent = await super().send(topic, key, value, partition, timestamp, headers,
                                  transactional_id=transactional_id)
        if topic not in RESENT_TOPICS:
            sent.add_done_callback(partial(_log_failed, topic))
            return sent

        async def again() -> Any:
            return await aiokafka.Producer.send(self, topic, key, value, partition, None, headers)

        return self._settling(sent, again, f"a record for {topic}")


def track_every_topic(client: Any) -> None:
    """Keep every topic the producer sends to in its metadata requests. aiokafka's
    `_wait_on_metadata` adds a topic to the tracked ones only if the metadata it already has
    lacks it: a topic learned from the first request (all topics, while none is tracked) is
    never tracked. Once another topic is (a changelog created after the producer started),
    each refresh asks for the tracked ones alone and forgets the rest: records for `events`
    or `command-results` then have no leader and wait until the send timeout, and fail with
    `NotLeaderForPartitionError` (seen in a worker's first seconds under load)."""
    wait = client._wait_on_metadata

    async def wait_tracked(topic: str) -> Any:
        client._topics.add(topic)
        return await wait(topic)

    client._wait_on_metadata = wait_tracked


def fence_accumulator(accumulator: Any, stopped: Callable[[], bool]) -> None:
    """Fail the accumulator's batches, instead of handing them to the sender, while
    `stopped()`: aiokafka's sender drains them as soon as the process runs again."""
    drain = accumulator.drain_by_nodes

    def drain_unless_stopped(ignore_nodes: Any, muted_partitions: Any = frozenset()) -> Any:
        if stopped():
            for tp in list(accumulator._batches):
                for batch in accumulator._batches.pop(tp):
                    batch.drain_ready()
                    batch.failure(exception=Fenced(f"not sent to {tp}: this worker is out "
                                                   "of its group"))
        return drain(ignore_nodes, muted_partitions)

    accumulator.drain_by_nodes = drain_unless_stopped
