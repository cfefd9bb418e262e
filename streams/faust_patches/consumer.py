"""The consumer: offsets kept straight across rebalances, membership, whole fetches, standbys.

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
The commonest stale fetch is one whose records were taken from the fetcher just before a seek
of their partition and reach the event loop just after it (the thread runs a fetch and a seek
side by side). Such records are now dropped exactly rather than guessed from their offsets:
the consumer's thread counts each partition's seeks, and every fetch carries the counts of
the moment its records were taken (`Fetch`). Guessing, a second stale fetch of one seek
looked like a hole, and its records were committed unhandled; with fetches waiting 100 ms
instead of 1.5 s that happened in a third of the rolling-deploy tests. And from the seek of a
rebalance's recovery until the flow control resumes after it, no source record is handed
over: the recovery resumes the stream partitions before that seek and the flow control after
it, which clears the streams' queues (see `perform_seek`).
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
Their records also skip Faust's fetch loop, which looks up the partition's end, tells the
sensors and tracks each record one at a time: they are made into messages a partition at a
time, after it, and tracked per partition (`track_messages`).

Leaving. A static group member (streams/settings.py `instance_id`) does not leave its group
when it stops in aiokafka; here it does on a clean stop, so a scale-down rebalances at once.
"""

import asyncio
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
)
from contextlib import suppress
from typing import Any
from weakref import WeakSet

import faust
from aiokafka.errors import IllegalStateError
from faust import EventT
from faust.transport.drivers import aiokafka
from faust.types import TP, Message
from mode.services import WaitResults
from mode.utils.queues import FlowControlEvent

from streams.membership import TICK, Membership

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


class Fetch(dict[TP, list[Any]]):
    """A fetch's records by partition, with how many seeks each partition had had when its
    records were taken from the fetcher (`ConsumerThread.sought`)."""

    def __init__(self, records: Mapping[TP, list[Any]], sought: dict[TP, int]) -> None:
        super().__init__(records)
        self.sought = sought


FETCH_WAIT_MS = 100
"""How long the broker holds a fetch that finds nothing new. Faust fixes it at 1,500 ms, and a
seek, a pause or an offset request waits for the fetch in flight: each step of a worker's
start and of every rebalance waited up to 1.5 s for it. A fetch that finds records returns at
once either way; a shorter wait costs an idle worker a few more fetch requests a second."""


class ConsumerThread(aiokafka.AIOKafkaConsumerThread):
    """Renews the membership lease whenever the group coordinator answers a heartbeat, and
    leaves the group on a clean stop even as a static member. Its consumer's fetches wait
    `FETCH_WAIT_MS` at most. It counts, per partition, the seeks that moved its fetcher
    (`sought`), on the thread that fetches, so a fetch can say whether a seek came after its
    records were taken: those records are stale, the seek reads them again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sought: dict[TP, int] = {}

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS
        return consumer

    def seeks_of(self, tp: TP) -> int:
        return self.sought.get(tp, 0)

    async def _fetch_records(self, consumer: Any, active_partitions: Any,
                             timeout: float | None = None,
                             max_records: int | None = None) -> Fetch:
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout,
                                               max_records=max_records)
        return Fetch(records, {tp: self.seeks_of(tp) for tp in records})

    def count_seeks(self, fetcher: Any) -> None:
        seek_to = fetcher.seek_to

        def counted(tp: TP, offset: int) -> None:
            self.sought[tp] = self.seeks_of(tp) + 1
            seek_to(tp, offset)

        fetcher.seek_to = counted

    async def on_start(self) -> None:
        await super().on_start()
        self.count_seeks(self._consumer._fetcher)
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


class FlowControl(FlowControlEvent):
    """The app's flow control into the streams' queues, which tells the consumer when it
    resumes (see `Consumer.perform_seek`)."""

    def __init__(self, app: faust.App, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app

    def resume(self) -> None:
        super().resume()
        consumer = self.app._consumer
        if isinstance(consumer, Consumer):
            consumer.flow_resumed()


class Consumer(aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.membership = Membership(self.app.conf.broker_session_timeout)
        self.unhandled: WeakSet[Message] = WeakSet()
        self.seeks = 0  # how many times `perform_seek` has begun
        self.fetched_at = 0
        self.fetch_seeks: dict[TP, int] = {}  # the fetch being handed over: `Fetch.sought`
        self.seeking = False  # from `perform_seek` until the flow control resumes
        self.dropped: set[TP] = set()  # source partitions with records dropped meanwhile
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
        self.whole_records: dict[TP, list[Any]] = {}  # this fetch's, of topics in WHOLE_FETCHES
        self.whole_generation = 0

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
                      self._committed_offset, self.expected, self.reread, self.handed,
                      self.dropped):
            books.clear()
        await super().on_partitions_assigned(assigned, generation_id)

    async def perform_seek(self) -> None:
        """Seek every partition to its committed offset. Until the flow control resumes after
        it (`flow_resumed`), no source record is handed over: Faust's recovery resumes the
        stream partitions before this seek and the flow control after it, which clears the
        streams' queues, so records handed over meanwhile came from before the seek or were
        cleared unhandled. Once it has resumed, the consumer reads those partitions again
        from their committed offsets (`read_dropped`). A partition with nothing committed is
        read from its start."""
        self.seeks += 1
        self.seeking = True
        await super().perform_seek()
        self.reread.clear()
        self.expected = {tp: offset or 0 for tp, offset in self._read_offset.items()
                         if not self._is_changelog_tp(tp)}
        await self.remember_ends()

    def flow_resumed(self) -> None:
        self.seeking = False

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
        self.fetch_seeks = getattr(records, "sought", {})
        kept = {}
        for tp, batch in records.items():
            expected = self.expected.get(tp)
            if self.sought_since_fetch(tp):
                log.debug("%s[%s]: a seek came after this fetch: dropped", tp.topic, tp.partition)
            elif expected is None or not batch:
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
        self.whole_generation = self.app.consumer_generation_id
        self.whole_records = {
            tp: batch for tp, batch in kept.items()
            if tp.topic in WHOLE_FETCHES and batch and (
                active_partitions is None or tp in active_partitions
                or tp in self._buffered_partitions)}
        return {tp: batch for tp, batch in kept.items() if tp.topic not in WHOLE_FETCHES}

    async def read_dropped(self) -> None:
        """Read again, from the next offset to hand over, the partitions whose records were
        dropped while a seek's window was open: at once, not when a later record shows the
        fetcher past them (a partition that gets none would wait for ever)."""
        dropped, self.dropped = self.dropped, set()
        offsets = {tp: self.expected[tp] for tp in dropped if tp in self.expected}
        try:
            await self.seek_wait(offsets)
        except (IllegalStateError, TimeoutError) as exc:  # revoked meanwhile: a rebalance seeks
            log.info("%s: not read again: %r", sorted(offsets), exc)

    def sought_since_fetch(self, tp: TP) -> bool:
        """Whether a seek moved `tp`'s fetcher after the current fetch took its records (they
        are stale: the seek reads from where it set)."""
        return bool(self._thread.seeks_of(tp) != self.fetch_seeks.get(tp, 0))

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
        if self.dropped and not self.seeking:
            await self.read_dropped()
        changelogs = self.app.tables.changelog_topics
        self.whole_records = {}
        standby: dict[TP, list[Message]] = {}
        applied_whole = {tp for tp in self.app.tables.recovery.standby_tps
                         if self.applies_whole(tp)}
        async for tp, message in super().getmany(timeout):
            if self.seeks != self.fetched_at:
                return  # a seek began: it reads the rest of this fetch again
            if self.seeking and tp.topic not in changelogs:
                self.dropped.add(tp)
                continue
            if tp in applied_whole:
                standby.setdefault(tp, []).append(message)
                continue
            if self.sought_since_fetch(tp):
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
        if self.seeks != self.fetched_at:
            return
        if standby:
            for tp, messages in self.apply_standby(self.not_sought(standby)).items():
                for message in messages:
                    yield tp, message
        whole, self.whole_records = self.whole_records, {}
        if not whole or not self.flow_active or self.should_stop:
            return
        if self.app.consumer_generation_id != self.whole_generation:
            return  # as Faust's loop stops at a new generation: the rebalance seeks
        if self.seeking:
            self.dropped.update(whole)
            return
        await self.hand_over(self.messages(self.not_sought(whole)))

    def messages(self, fetched: Mapping[TP, list[Any]]) -> dict[TP, list[Message]]:
        """Faust's messages of a fetch's records, as its fetch loop makes them one by one, with
        the monitor told each partition's end once."""
        to_message = self._to_message
        messages = {}
        for tp, records in fetched.items():
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            messages[tp] = [to_message(tp, record) for record in records]
        return messages

    def not_sought(self, fetched: dict[TP, list[Message]]) -> dict[TP, list[Message]]:
        return {tp: batch for tp, batch in fetched.items() if not self.sought_since_fetch(tp)}

    def applies_whole(self, tp: TP) -> bool:
        """Whether this changelog partition's records go to its store a fetch at a time: a
        standby's, of a table whose store writes them in bulk, with `App.whole_standbys` on."""
        recovery = self.app.tables.recovery
        if not self.app.whole_standbys or tp not in recovery.standby_tps:
            return False
        return tp not in recovery.active_tps and hasattr(
            recovery.tp_to_table[tp].data, "write_restored")

    def apply_standby(self, fetched: dict[TP, list[Message]]) -> dict[TP, list[Message]]:
        """Write a fetch's standby changelog records into their stores, one write batch per
        partition with its last offset, and move Faust's standby books on as its recovery
        would, record by record (conductor, queue, a task per record, buffers): at two workers
        that cost more CPU than folding the events (docs/benchmarks.md). Records already
        applied, or of a partition no longer assigned here, are skipped. Those of a partition
        made active while the fetch was read are returned, for Faust's recovery: it sought the
        partition before they were fetched, and a small changelog comes whole in one fetch
        (dropped, its recovery waited for them for ever after a worker rejoined its group)."""
        recovery = self.app.tables.recovery
        now_active = {}
        for tp, messages in fetched.items():
            if tp in recovery.active_tps:
                log.info("%s[%s]: made active while its standby fetch was read: %d records go "
                         "to its recovery", tp.topic, tp.partition, len(messages))
                now_active[tp] = messages
                continue
            if not self.applies_whole(tp):
                continue  # revoked while the fetch was read: the next assignment seeks
            applied = recovery.standby_offsets.get(tp)
            fresh = [m for m in messages if applied is None or m.offset > applied]
            if fresh:
                recovery.tp_to_table[tp].data.write_restored(tp, fresh)
                recovery.standby_offsets[tp] = fresh[-1].offset
                self._read_offset[tp] = fresh[-1].offset
        return now_active

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
            read = self._read_offset[tp]
            fresh = batch if read is None else [m for m in batch if m.offset >= read]
            for message in fresh:
                if read and message.offset - read > 1:
                    await self._add_gap(tp, read + 1, message.offset)
                read = message.offset
            if fresh:
                self._read_offset[tp] = read
                self.expected[tp] = read + 1
                self.track_messages(tp, fresh)
                messages += fresh
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

    def track_messages(self, tp: TP, messages: list[Message]) -> None:
        """`track_message` for a partition's records of one fetch: each pending until
        acknowledged; Faust's monitor counts them at once, any other sensor one by one."""
        self._unacked_messages.update(messages)
        monitor = self.app.monitor
        for sensor in self.app.sensors:
            if sensor is monitor:
                monitor.messages_received_total += len(messages)
                monitor.messages_received_by_topic[tp.topic] += len(messages)
                monitor.tp_read_offsets[tp] = messages[-1].offset
            else:
                for message in messages:
                    sensor.on_message_in(tp, message.offset, message)

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
        app, event = self.app, self.app.conf.Event  # app.create_event looks it up per record
        try:
            await WHOLE_FETCHES[topic]([event(app, m.key, m.value, m.headers, m)
                                        for m in messages])
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
