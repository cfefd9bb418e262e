"""Every change to Faust's private internals, in one room (faust-streaming 0.15.3).

Each patch below names the Faust behaviour it works around; tests/agents/test_faust_patches.py
fails if an upgrade changes the upstream code a patch relies on.

The consumer keeps its offsets straight across rebalances, knows whether it still belongs to
its group, and hands messages over cheaper.

Offsets. Faust commits, per partition, up to the first offset its streams have not yet
acknowledged, and takes offsets skipped between two records it reads for a gap (done). In a
rebalance the fetcher runs again before the partitions are sought back to their committed
offsets, and Faust 0.15 went on delivering a fetch made before the seek after it: the seek
moved the read offset back, the rest of the old fetch moved it forward again, and the
records in between became a gap, committed unhandled (commands with no result, no event and
no dead letter: the fault suite's scale and wipe-state scenarios). A fetch that a seek made
stale could also move the fetcher past records that were then never handed over at all.
Here the consumer remembers, per stream partition, the next offset it must hand over: a fetch
stops being handed over once a seek begins; records before that offset are not handed over
twice; and a fetch that starts past it makes the consumer seek back and read again (once: a
second time the offsets are a real hole). That seek runs on the consumer's thread: Faust's
own seek() moves the fetcher from the event loop's thread, and a fetch in progress on the
consumer's thread could move it on again, so the records were skipped after all.
Acknowledgements that arrive after Faust cleared its books for a rebalance no longer carry
into the next generation (the books are cleared on assignment), a record an agent left
unhandled does not count as done, and nothing is committed past the committed offset until
that record is done (Faust committed past it when the records after it were).

Hand-off. For every message, Faust's consumer races the delivery against a flow suspension
with `Service.wait_first`: four tasks and an `asyncio.wait` per message, which costs more
than everything a simple agent does with it. Here, while the flow runs, the delivery is
awaited directly inside a cancel scope; suspending the flow (a rebalance) expires every open
scope at once, which interrupts a delivery blocked on a full stream buffer just as the race
did. About 15 % cheaper per event; the whole fault suite passes with it.

Whole fetches (SHOPSTREAM_WHOLE_FETCHES). The records of the event log, of the commands
topics and of the command results skip the stream path (conductor, channel, stream buffer,
`take_events`, an ack per event): the consumer hands the fetched records of a topic in
`WHOLE_FETCHES` to its handler, all that arrived while it was busy at once (the handlers side
by side, each one's topics in turn), and acknowledges them when it returns, so the offsets
committed never pass a record the handler has not finished; the topic's agent stays
subscribed, which keeps Faust's assignment, tables and standbys as they were. The fetch loop,
which also delivers the other topics, does not wait for the handlers unless a stream buffer's
worth of records is waiting: when it waited for each fetch to be taken, every small fetch of
the event log held the commands behind a whole fold (0.6-1 s for 7 records at load average 9).

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

Leaving. A static group member (streams/settings.py `instance_id`) does not leave its group
when it stops in aiokafka; here it does on a clean stop, so a scale-down rebalances at once.

Batches. Faust's `take_events` wakes every `within` seconds, events or not; here a batch
waits for its first event without a timer and goes as soon as nothing more is queued
(`Stream`).

Tables. Inside a batch from `take_events` Faust sets no current event, and a table write
needs one to pick its partition (faust-streaming issue #497): `as_current` names it. A
changelog created moments ago can show 0 partitions, which Faust took for a mismatch.
A list query reads one partition's database from a key on (`partition_items`): Faust's own
iteration walks every active partition, always from the first key.

Assignment. Faust's assignor leaves out a topic the leader's metadata does not show yet
("Ignoring missing topic"); here such a topic is assigned by the partitions the app declared
it with (`PartitionAssignor`).

"""

import asyncio
import logging
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import suppress
from functools import partial
from typing import Any, ClassVar, cast
from weakref import WeakSet

import faust
from aiokafka.errors import IllegalStateError
from faust import EventT
from faust import streams as faust_streams
from faust.assignor import partition_assignor
from faust.stores import rocksdb
from faust.tables import manager, recovery
from faust.transport.drivers import aiokafka
from faust.transport.producer import ProducerBuffer
from faust.types import TP, Message, StoreT
from faust.types.transports import TransportT
from mode.services import WaitResults
from mode.utils.aiter import aiter
from mode.utils.futures import notify

from streams.membership import TICK, Fenced, Membership

log = logging.getLogger(__name__)


class Suspension(asyncio.Event):
    """The consumer's suspend-flow event, whose wait() the hand-off can recognise."""

    def wait(self) -> "SuspensionWait":  # type: ignore[override]
        return SuspensionWait(self)


class SuspensionWait:
    def __init__(self, event: Suspension) -> None:
        self.event = event

    def __await__(self) -> Generator[Any, None, bool]:
        return asyncio.Event.wait(self.event).__await__()


class ConsumerThread(aiokafka.AIOKafkaConsumerThread):
    """Renews the membership lease whenever the group coordinator answers a heartbeat, and
    leaves the group on a clean stop even as a static member."""

    async def on_start(self) -> None:
        await super().on_start()
        coordinator = self._consumer._coordinator
        heartbeat = coordinator._do_heartbeat
        membership = self.consumer.membership
        coordinator._maybe_leave_group = leaving_on_close(coordinator)

        async def answered() -> bool:
            still_member = await heartbeat()
            if still_member:
                membership.renew()
            return bool(still_member)

        coordinator._do_heartbeat = answered


def leaving_on_close(coordinator: Any) -> Callable[[], Awaitable[None]]:
    """aiokafka's leave-group step, made to leave on close also for a static member.

    With a group.instance.id, aiokafka never sends LeaveGroup, so the group waits the whole
    session timeout before handing a stopped worker's partitions to the others: right for a
    crash (a restarted worker takes its partitions back without a rebalance), wrong for a
    clean stop or a scale-down. LeaveGroup v1 names the member id only, which the coordinator
    removes like any member; only when closing, so other leave paths keep static rules."""
    leave = coordinator._maybe_leave_group

    async def maybe_leave() -> None:
        if not coordinator._closing.done() or coordinator._group_instance_id is None:
            await leave()
            return
        instance, coordinator._group_instance_id = coordinator._group_instance_id, None
        try:
            await leave()
        finally:
            coordinator._group_instance_id = instance

    return maybe_leave


WHOLE_FETCHES: dict[str, Callable[[list[EventT]], Awaitable[None]]] = {}
"""Topics whose records the consumer hands to one handler per fetch, instead of to a stream
record by record (see `Consumer.hand_over`); an agent still subscribes to the topic."""


class Consumer(aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.membership = Membership(self.app.conf.broker_session_timeout)
        self.unhandled: WeakSet[Message] = WeakSet()
        self.seeks = 0  # counts the starts and the ends of seeks
        self.fetched_at = 0
        self.expected: dict[TP, int] = {}  # the next offset to hand over, per stream partition
        self.reread: dict[TP, int] = {}
        self.handed: set[TP] = set()  # stream partitions handed a record since the assignment
        self.suspend_flow = Suspension()
        self.deliveries: set[asyncio.Timeout] = set()
        self.assignments = 0  # how many assignments this consumer has had
        self.ends_at_assignment: dict[TP, int] | None = None  # None until known
        self.fetched: list[Message] = []  # handed over whole, not yet taken by the handler
        self.fetched_more = asyncio.Event()
        self.taken = asyncio.Event()
        self.backlog = self.app.conf.stream_buffer_maxsize  # records `fetched` may hold

    @faust.Service.task
    async def _stop_watch(self) -> None:
        while not self.should_stop:
            self.membership.tick()
            await asyncio.sleep(TICK)

    def _new_consumer_thread(self) -> aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def leave_unhandled(self, messages: Iterable[Message]) -> None:
        """These records were not handled: their acknowledgement must not commit them."""
        self.unhandled.update(messages)

    def ack(self, message: Message) -> bool:
        if message in self.unhandled:
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        return super().ack(message)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        if self.membership.lapsed():
            log.warning("back in the group after %.1f s out of it: the tables are restored from "
                        "their changelogs' start", self.membership.silent_for())
            for table in self.app.tables.values():
                forget = getattr(table.data, "forget_progress", None)
                if forget is not None:
                    forget()
        self.membership.assigned()
        self.assignments += 1
        self.ends_at_assignment = None
        for books in (self._acked, self._acked_index, self._gap, self._read_offset,
                      self._committed_offset, self.expected, self.reread, self.handed):
            books.clear()
        await super().on_partitions_assigned(assigned, generation_id)

    async def perform_seek(self) -> None:
        self.seeks += 1
        try:
            await super().perform_seek()
        finally:
            self.seeks += 1
        self.reread.clear()
        self.expected = {tp: offset for tp, offset in self._read_offset.items()
                         if offset is not None and not self._is_changelog_tp(tp)}
        await self.remember_ends()

    def committed_offset(self, tp: TP) -> int | None:
        """The offset committed for `tp` (the next to read), as this consumer last knew it."""
        offset: int | None = self._committed_offset.get(tp)
        return offset

    async def remember_ends(self) -> None:
        """Where each source partition ended as this assignment began: what the previous
        owner may already have shown readers, so a view is fresh here once it has folded
        that far (`web.replicas`)."""
        sources = [tp for tp in self.assignment() if not self._is_changelog_tp(tp)]
        try:
            self.ends_at_assignment = dict(await self.highwaters(*sources))
        except Exception as exc:  # the broker went away meanwhile: no bound, not none fresh
            log.warning("could not read where the assigned partitions end: %r", exc)
            self.ends_at_assignment = {}

    async def _getmany(self, active_partitions: set[TP] | None,
                       timeout: float) -> Mapping[TP, list[Any]]:
        records = await super()._getmany(active_partitions, timeout)
        self.fetched_at = self.seeks
        kept = {}
        for tp, batch in records.items():
            expected = self.expected.get(tp)
            if expected is None or not batch:
                kept[tp] = batch
            elif batch[0].offset > expected and self.reread.get(tp) != expected:
                # The fetcher is past records that were never handed over (a fetch that was
                # dropped or cut short): read them again, once; a second time it is a hole.
                log.info("%s[%s]: fetched from %s, but %s was never handed over: reading again",
                         tp.topic, tp.partition, batch[0].offset, expected)
                self.reread[tp] = expected
                await self.read_again(tp, expected)
            else:
                if batch[0].offset > expected:
                    log.warning("%s[%s]: offsets %s to %s are not in the log", tp.topic,
                                tp.partition, expected, batch[0].offset - 1)
                    self._gap[tp].addi(expected, batch[0].offset)
                kept[tp] = [record for record in batch if record.offset >= expected]
        return kept

    async def read_again(self, tp: TP, offset: int) -> None:
        """Seek on the consumer's own thread: Faust's seek() moves the fetcher from this
        thread, racing a fetch in progress there, which can move it on past the seek."""
        try:
            await self.seek_wait({tp: offset})
        except (IllegalStateError, TimeoutError) as exc:  # revoked meanwhile: a rebalance seeks
            log.info("%s[%s]: not read again: %r", tp.topic, tp.partition, exc)
            return
        self.expected[tp] = offset

    def _new_offset(self, tp: TP) -> int | None:
        # Faust commits past the committed offset when the acknowledgements start one after
        # it; that record may never have been handled.
        committed = self._committed_offset[tp]
        if (committed is not None and self._acked[tp]
                and committed not in self._acked_index[tp]
                and not self._gap[tp].overlaps_point(committed)):
            return None
        return super()._new_offset(tp)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        changelogs = self.app.tables.changelog_topics
        whole: dict[TP, list[Message]] = {}
        standby: dict[TP, list[Message]] = {}
        async for tp, message in super().getmany(timeout):
            if self.seeks != self.fetched_at:
                return  # a seek began: it reads the rest of this fetch again
            if tp.topic in WHOLE_FETCHES:
                whole.setdefault(tp, []).append(message)
                continue
            if tp.topic in changelogs and self.applies_whole(tp):
                standby.setdefault(tp, []).append(message)
                continue
            if tp.topic not in changelogs:
                if tp not in self.handed:
                    self.handed.add(tp)
                    # Where each partition starts against its committed offset: after a
                    # kill -9 a partition once started past it, unnoticed (docs/benchmarks.md).
                    log.info("%s[%s]: first record handed over since the assignment: %s "
                             "(committed: %s)", tp.topic, tp.partition, message.offset,
                             self._committed_offset.get(tp))
                self.expected[tp] = message.offset + 1
            yield tp, message
        if standby and self.seeks == self.fetched_at:
            self.apply_standby(standby)
        if whole and self.flow_active and self.seeks == self.fetched_at:
            await self.hand_over(whole)

    def applies_whole(self, tp: TP) -> bool:
        """Whether this changelog partition's records go to its store a fetch at a time: a
        standby's, of a table whose store writes them in bulk, with `App.whole_standbys` on."""
        recovery = self.app.tables.recovery
        if not self.app.whole_standbys or tp not in recovery.standby_tps:
            return False
        return tp not in recovery.active_tps and hasattr(
            recovery.tp_to_table[tp].data, "write_restored")

    def apply_standby(self, fetched: dict[TP, list[Message]]) -> None:
        """Write a fetch's standby changelog records into their stores, one write batch per
        partition with its last offset, and move Faust's standby books on as its recovery
        would, record by record (conductor, queue, a task per record, buffers): at two workers
        that cost more CPU than folding the events (docs/benchmarks.md). Records already
        applied, or of a partition no longer a standby here, are skipped."""
        recovery = self.app.tables.recovery
        for tp, messages in fetched.items():
            if not self.applies_whole(tp):
                continue  # revoked while the fetch was read: the next assignment seeks
            applied = recovery.standby_offsets.get(tp)
            fresh = [m for m in messages if applied is None or m.offset > applied]
            if fresh:
                recovery.tp_to_table[tp].data.write_restored(tp, fresh)
                recovery.standby_offsets[tp] = fresh[-1].offset
                self._read_offset[tp] = fresh[-1].offset

    async def hand_over(self, fetched: dict[TP, list[Message]]) -> None:
        """Hand a fetch's records of a topic in `WHOLE_FETCHES` over, as Faust's own loop
        (`_drain_messages`) would hand them to a stream one by one: gaps noted, each record
        tracked until acknowledged, the read offset moved on. They wait in `fetched` for the
        handler's task, which takes all there are at once; the fetch loop goes on delivering the
        other topics meanwhile, and waits only once `fetched` holds as many records as a
        stream's buffer (as a full stream buffer makes it wait). A record counts as done only
        once the handler has returned; one left unhandled, or dropped because the flow stopped
        before the handler took it, does not (see `ack`)."""
        messages = []
        for tp, batch in fetched.items():
            for message in batch:
                read = self._read_offset[tp]
                if read is not None and message.offset < read:
                    continue
                if read and message.offset - read > 1:
                    await self._add_gap(tp, read + 1, message.offset)
                self._read_offset[tp] = message.offset
                self.expected[tp] = message.offset + 1
                self.track_message(message)
                messages.append(message)
        if not messages:
            return
        if not self.flow_active:
            self.drop(messages)
            return
        self.fetched += messages
        self.fetched_more.set()
        if len(self.fetched) < self.backlog:
            return
        with suppress(TimeoutError):  # the flow stopped: `stop_flow` dropped them
            async with asyncio.timeout(None) as scope:
                self.deliveries.add(scope)
                try:
                    while self.fetched:
                        self.taken.clear()
                        await self.taken.wait()
                finally:
                    self.deliveries.discard(scope)

    @faust.Service.task
    async def _handle_fetches(self) -> None:
        """The handler runs beside the fetch loop, as an agent would."""
        while not self.should_stop:
            await self.fetched_more.wait()
            await self.handle_fetched()

    async def handle_fetched(self) -> None:
        """Hand every record waiting in `fetched` to its topic's handler, then acknowledge them.
        Different handlers run side by side, as their agents would (the command handler waits
        for its events' acks while the event log is folded); one handler's topics in turn."""
        self.fetched_more.clear()
        messages, self.fetched = self.fetched, []
        self.taken.set()
        by_handler: dict[Any, dict[str, list[Message]]] = {}
        for message in messages:
            by_handler.setdefault(WHOLE_FETCHES[message.topic], {}).setdefault(
                message.topic, []).append(message)
        if len(by_handler) == 1:
            await self.handle_topics(*by_handler.values())
            return
        outcomes = await asyncio.gather(*map(self.handle_topics, by_handler.values()),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def handle_topics(self, by_topic: dict[str, list[Message]]) -> None:
        while by_topic:
            topic = next(iter(by_topic))
            try:
                await self.handle_fetch(topic, by_topic.pop(topic))
            except BaseException:
                for rest in by_topic.values():
                    self.drop(rest)
                raise

    async def handle_fetch(self, topic: str, messages: list[Message]) -> None:
        create = self.app.create_event
        try:
            await WHOLE_FETCHES[topic]([create(m.key, m.value, m.headers, m) for m in messages])
        except asyncio.CancelledError:
            self.leave_unhandled(messages)
            raise
        except Exception:
            log.exception("handling a fetch of %s failed: it is left unhandled", topic)
            self.leave_unhandled(messages)
        finally:
            for message in messages:
                self.ack(message)

    def drop(self, messages: list[Message]) -> None:
        """Records handed over but not handled: the seek after a rebalance reads them again."""
        self.leave_unhandled(messages)
        for message in messages:
            self.ack(message)

    def stop_flow(self) -> None:
        super().stop_flow()
        now = asyncio.get_running_loop().time()
        for delivery in self.deliveries:
            delivery.reschedule(now)
        dropped, self.fetched = self.fetched, []
        self.drop(dropped)
        self.taken.set()

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if not (timeout is None and len(coros) == 2 and isinstance(coros[1], SuspensionWait)):
            return await super().wait_first(*coros, timeout=timeout)
        if not self.flow_active or self.should_stop:
            return await super().wait_first(*coros, timeout=timeout)
        delivery, suspended = coros
        try:
            async with asyncio.timeout(None) as scope:
                self.deliveries.add(scope)
                try:
                    result = await delivery
                finally:
                    self.deliveries.discard(scope)
        except TimeoutError:
            return WaitResults([suspended], [None], False)
        return WaitResults([delivery], [result], False)


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
                for batch, keys in _batches(producer, records)]

    async def send_whole(self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes]],
                         ) -> list[tuple[Any, int]]:
        """`send_records` for records whose sender awaits them itself (a command batch's
        events): a failed batch fails its own future alone, not the next `flush`."""
        if self.stopped():
            return [(_refused(topic), 0)]
        producer = self._ensure_producer()
        sent = []
        for batch, keys in _batches(producer, records):
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


def _batches(producer: Any, records: Iterable[tuple[bytes, bytes]],
             ) -> Iterator[tuple[Any, list[bytes]]]:
    """aiokafka batches filled with `records` in order, each with its records' keys."""
    batch, keys = producer.create_batch(), []
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            yield batch, keys
            batch, keys = producer.create_batch(), []
            batch.append(key=key, value=value, timestamp=None)
        keys.append(key)
    if keys:
        yield batch, keys


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


class Transport(aiokafka.Transport):
    Consumer: ClassVar[type[aiokafka.Consumer]] = Consumer
    Producer: ClassVar[type[aiokafka.Producer]] = Producer


class Table(faust.Table):
    """Faust's table, which keeps its standby copies current, and waits for a changelog
    topic it has just created to show its partitions instead of failing every write.

    Faust buffers a standby's changelog records and writes them only 1,000 at a time (its
    recovery buffer size), or when an active recovery ends: a standby of a table written
    less often trailed its active by up to 1,000 rows, and was missing new keys, so reads
    served from it answered 404 or an old row. Here each standby record is written at once.

    Faust checks once per table that the changelog has as many partitions as the stream
    writing to it. A changelog created moments ago can still show 0 partitions in the
    consumer's metadata, and Faust then raised PartitionsMismatch on every write (every
    saga step of a worker was dead-lettered that way). A count of 0 is not a mismatch: the
    check is left for a later write, when the metadata has caught up.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("standby_buffer_size", 1)
        super().__init__(*args, **kwargs)

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return
        super()._verify_source_topic_partitions(source_topic)


class Stream(faust.Stream):
    """Faust's stream, whose batches wait for their first event without a timer. Faust's
    `take_events` wakes every `within` seconds (four tasks and an `asyncio.wait` each time)
    whether or not anything came: five agents at 0.01 s kept an idle worker at about 6 % of
    a core. Here a batch waits for its first event with no timeout and is handed over as
    soon as nothing more is queued for the stream, or it holds `max_` events, or `within`
    has passed since its first; the events that come while it is handled make the next
    batch. It is acknowledged once handled, as in Faust."""

    @faust_streams._tracks_buffer_agen
    async def take_events(self, max_: int, within: float) -> AsyncIterator[list[EventT]]:
        events: list[EventT] = []
        arrived, ready, consumed = asyncio.Event(), asyncio.Event(), asyncio.Event()
        handling: asyncio.Future[None] | None = None
        channel = aiter(self.channel)

        async def add_to_buffer(value: Any) -> Any:
            nonlocal handling
            if handling is not None:  # a batch is being handled: this event joins the next
                try:
                    await handling
                finally:
                    handling = None
            event = self.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            events.append(event)
            arrived.set()
            if len(events) >= max_:
                ready.set()
                consumed.clear()
                await self.wait(consumed)  # type: ignore[arg-type]
            elif channel.empty():
                ready.set()
            return value

        acking, self.enable_acks = self.enable_acks, False
        self.add_processor(add_to_buffer)
        self._enable_passive(cast(Any, channel))
        try:
            while not self.should_stop:
                await self.wait_for_stopped(arrived)  # type: ignore[arg-type]
                if not events:  # stopped: what had come is handled first, as in Faust
                    break
                await self.wait_for_stopped(ready, timeout=within)  # type: ignore[arg-type]
                handling = self.loop.create_future()
                batch = list(events)
                try:
                    yield batch
                finally:
                    events.clear()
                    arrived.clear()
                    for event in batch:
                        await self.ack(event)
                    notify(handling)
                    ready.clear()
                    consumed.set()
        finally:
            self.enable_acks = acking
            self._processors.remove(add_to_buffer)


class PartitionAssignor(partition_assignor.PartitionAssignor):
    """Faust's assignor, which assigns a topic missing from the leader's metadata by the
    partitions the app declared it with, instead of leaving it out.

    A table's changelog created moments before the group's first rebalance could be missing
    from the leader's metadata then; Faust left it out of the assignment, so it was nobody's,
    active or standby, until the next rebalance. A worker killed and started again meanwhile
    rejoins as the same static member without a rebalance, gets that assignment back, and
    restores nothing of the table: the saga, finding no state for an order, ignored its
    `OrderCancelled` (kill-9: `reservation-saga` states stored `confirmed`, folded `cancelled`)."""

    def _get_copartitioned_groups(  # type: ignore[override]  # per app, not per class
            self, topics: Any, cluster: Any, subscriptions: Any) -> Any:
        declared = WithDeclared(cluster, declared_partitions(self.app))
        return super()._get_copartitioned_groups(topics, declared, subscriptions)


class WithDeclared:
    """Cluster metadata that answers for a topic it does not show yet with its declared
    partitions."""

    def __init__(self, cluster: Any, declared: Mapping[str, int]) -> None:
        self.cluster, self.declared = cluster, declared

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        found: set[int] | None = self.cluster.partitions_for_topic(topic)
        if not found and self.declared.get(topic):
            log.warning("%s is not in the metadata yet: assigned by its %s declared partitions",
                        topic, self.declared[topic])
            return set(range(self.declared[topic]))
        return found


def declared_partitions(app: Any) -> dict[str, int]:
    """Each topic the app's agents read and each table's changelog, by its partition count."""
    default = app.conf.topic_partitions
    found = {table.changelog_topic.get_topic_name(): table.changelog_topic.partitions or default
             for table in app.tables.values()}
    for channel in app.topics:
        for name in getattr(channel, "topics", ()):
            found.setdefault(name, channel.partitions or default)
    return found


class App(faust.App):
    """Faust's app on the consumer above. Faust builds its transport from the broker URL's
    scheme alone; the override is the one place that can hand it our consumer."""

    whole_standbys = False
    """Standby changelog records applied a fetch at a time (`Consumer.apply_standby`)."""

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)


def as_current(event: EventT) -> None:
    """Make `event` the current event for the table operations that follow in this task: a
    table read or write picks its partition's store and changelog partition from Faust's
    current event, which `take_events` batches do not set (faust-streaming issue #497)."""
    faust_streams._current_event.set(weakref.ref(event))


def stored_value(store: StoreT[Any, Any], partition: int, key: bytes) -> bytes | None:
    """The value the RocksDB store holds for `key` in one partition's database."""
    assert isinstance(store, rocksdb.Store)
    value: bytes | None = store._db_for_partition(partition).get(key)
    return value


def estimated_keys(store: rocksdb.Store, partitions: Iterable[int]) -> int | None:
    """RocksDB's own estimate of the keys in those of `partitions` this store has open; None if
    it has none of them open. Faust keeps the databases by partition in `_dbs`."""
    counts = [db.property_int_value("rocksdb.estimate-num-keys")
              for db in (store._dbs.get(partition) for partition in partitions) if db is not None]
    known = [count for count in counts if count is not None]
    return sum(known) if known else None


def partition_items(store: StoreT[Any, Any], partition: int,
                    start: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The keys and values of one partition's RocksDB database in key order, from `start` on:
    Faust iterates only every active partition at once, from the first key."""
    assert isinstance(store, rocksdb.Store)
    database = store._db_for_partition(partition)
    for key, value in database.items(from_key=start):
        if key != store.offset_key:
            yield key, value


# Bulk restore ---------------------------------------------------------------------------------
#
# Faust restores a table partition one changelog record at a time (fetcher, conductor, its
# recovery loop re-checking every assigned partition per record): about 9,000 rows/s. Here a
# restorer (streams/restore.py) starts with each rebalance, and Faust's recovery, whose every
# step goes through `Recovery._wait`, waits there for it before its first step (untimed; a newer
# rebalance still interrupts the wait as it does every step). Faust's recovery then reads from
# the offsets the restorer stored. A revocation cancels the restorer before Faust's stores close
# the revoked partitions' databases, so nothing is written for a partition no longer held.

Restorer = Callable[[Mapping[TP, Any], Callable[[], bool]], Awaitable[None]]
"""Brings the stores of the given changelog partitions up to their changelog's end (or part of
the way); the callable says whether the rebalance it restores for is still the current one."""


class Recovery(recovery.Recovery):
    """Faust's recovery, which starts reading only when the restorer has written what it could."""

    def __init__(self, app: Any, tables: Any, *, restorer: Restorer | None = None,
                 **kwargs: Any) -> None:
        super().__init__(app, tables, **kwargs)
        self.restorer = restorer
        self.restoring: asyncio.Task[None] | None = None

    def on_partitions_revoked(self, revoked: set[TP]) -> None:
        if self.restoring is not None:
            self.restoring.cancel()
        super().on_partitions_revoked(revoked)

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP],
                           newly_assigned: set[TP], generation_id: int = 0) -> None:
        await self.stop_restoring()
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        if self.restorer is None or generation_id != self.app.consumer_generation_id:
            return
        stores = {tp: cast(Any, self.tp_to_table[tp]).data
                  for tp in self.active_tps | self.standby_tps}
        self._set_recovery_started()  # /ready says "recovering" from here
        self.restoring = asyncio.ensure_future(self.restore(stores, generation_id))

    async def restore(self, stores: Mapping[TP, Any], generation_id: int) -> None:
        assert self.restorer is not None
        try:
            await self.restorer(stores,
                                lambda: self.app.consumer_generation_id == generation_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bulk restore failed: Faust's recovery reads the changelogs instead")
        for tp, store in stores.items():
            offset = store.persisted_offset(tp)
            if offset is not None:
                offsets = self.active_offsets if tp in self.active_tps else self.standby_offsets
                offsets[tp] = offset

    async def _wait(self, coro: Any, timeout: Any = None) -> None:
        restoring = self.restoring
        if restoring is not None and (not restoring.done() or restoring.cancelled()):
            try:
                await super()._wait(self.restored(restoring))
            except BaseException:
                if asyncio.iscoroutine(coro):
                    coro.close()  # the step interrupted before it began
                raise
        await super()._wait(coro, timeout=timeout)

    @staticmethod
    async def restored(restoring: asyncio.Task[None]) -> None:
        """Until the restore is done. A restore cancelled by a revocation holds Faust's
        recovery until the next assignment's start signal interrupts it: let through, Faust's
        recovery of the old assignment ran on in the middle of the rebalance and resumed the
        streams on it (commands decided twice, rows written back in scale-1-2-3-1)."""
        await asyncio.wait([restoring])  # never raises the task's own error
        if restoring.cancelled():
            await asyncio.Event().wait()

    async def stop_restoring(self) -> None:
        restoring, self.restoring = self.restoring, None
        if restoring is not None:
            restoring.cancel()
            await asyncio.gather(restoring, return_exceptions=True)

    async def on_stop(self) -> None:
        await self.stop_restoring()
        await super().on_stop()


class TableManager(manager.TableManager):
    """Faust's table manager, whose recovery runs `restore_in_bulk` first."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, restorer=self.restore_in_bulk,
                                      beacon=self.beacon, loop=self.loop)
        assert isinstance(self._recovery, Recovery)
        return self._recovery

    async def restore_in_bulk(self, stores: Mapping[TP, Any], current: Callable[[], bool]) -> None:
        """Nothing here: Faust's recovery reads the changelogs alone."""


def partition_database(store: StoreT[Any, Any], partition: int) -> Any:
    """The RocksDB database of one partition of `store`, opened if it is not yet."""
    assert isinstance(store, rocksdb.Store)
    return store._db_for_partition(partition)
