"""The consumer's offset books across rebalances and seeks, and the direct hand-off: a
message is delivered, and a delivery blocked when a rebalance suspends the flow is
interrupted, as Faust's own race does."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka
from faust.types import TP, Message

from streams import faust_patches
from streams.app import app
from streams.faust_patches import Consumer, Transport
from streams.faust_patches.consumer import Fetch, FlowControl

COMMANDS = TP("commands", 0)


MADE: list[Consumer] = []


@pytest.fixture(autouse=True)
def close_thread_loops() -> Any:
    """Each consumer's thread made its own event loop, never run here: closed after the test
    (left to the garbage collector, closing one raised)."""
    yield
    while MADE:
        MADE.pop()._thread.thread_loop.close()


def consumer() -> Consumer:
    async def ignore(*_: Any) -> None:
        return None

    made = Transport(app.conf.broker_consumer, app).create_consumer(
        callback=ignore, on_partitions_revoked=ignore, on_partitions_assigned=ignore)
    assert isinstance(made, Consumer)
    made.resume_flow()
    MADE.append(made)
    return made


async def test_a_message_is_handed_to_the_streams_directly() -> None:
    direct = consumer()
    delivered = []

    async def deliver() -> str:
        delivered.append(1)
        return "done"

    outcome = await direct.wait_first(deliver(), direct.suspend_flow.wait())
    assert delivered == [1] and outcome.results == ["done"] and not outcome.stopped


async def test_a_delivery_blocked_when_the_flow_is_suspended_is_interrupted() -> None:
    direct = consumer()
    started, never = asyncio.Event(), asyncio.Event()

    async def blocked() -> None:
        started.set()
        await never.wait()

    handing = asyncio.ensure_future(direct.wait_first(blocked(), direct.suspend_flow.wait()))
    await asyncio.wait_for(started.wait(), 5)
    assert not handing.done()
    direct.stop_flow()
    outcome = await asyncio.wait_for(handing, 5)
    assert outcome.results == [None]


def message(offset: int) -> Message:
    return Message(COMMANDS.topic, COMMANDS.partition, offset, 0.0, 0, [], b"k", b"v", None,
                   tp=COMMANDS)


@pytest.fixture
def acking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: True)


@pytest.mark.usefixtures("acking")
def test_a_record_left_unhandled_is_acknowledged_without_counting_as_done() -> None:
    books = consumer()
    left, handled = message(5), message(6)
    books.leave_unhandled([left])
    assert not books.ack(left) and left.acked
    assert books.ack(handled)
    assert books._acked[COMMANDS] == [6]


@pytest.mark.usefixtures("acking")
async def test_an_assignment_starts_from_clean_books() -> None:
    books = consumer()
    books.ack(message(7))  # acknowledged after the previous generation's books were cleared
    books._read_offset[COMMANDS] = 7
    await books.on_partitions_assigned({COMMANDS}, 2)
    assert not books._acked and not books._acked_index and not books._read_offset


def records(*offsets: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(offset=offset) for offset in offsets]


async def test_records_the_fetcher_moved_past_are_read_again_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    fetches = [{COMMANDS: records(163, 164)}, {COMMANDS: records(156, 157)},
               {COMMANDS: records(170, 171)}, {COMMANDS: records(170, 171)}]
    sought = []

    async def fetch(self: Consumer, active: Any, timeout: float) -> Any:
        return fetches.pop(0)

    async def seek_wait(self: Consumer, partitions: dict[TP, int]) -> None:
        sought.append(partitions[COMMANDS])

    async def seek_from_this_thread(self: Consumer, tp: TP, offset: int) -> None:
        raise AssertionError("a seek from the event loop's thread races the consumer thread")

    monkeypatch.setattr(aiokafka.Consumer, "_getmany", fetch)
    monkeypatch.setattr(aiokafka.Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(aiokafka.Consumer, "_seek", seek_from_this_thread)
    books.expected[COMMANDS] = 156
    assert await books._getmany({COMMANDS}, 1.0) == {}
    assert sought == [156]
    assert [r.offset for r in (await books._getmany({COMMANDS}, 1.0))[COMMANDS]] == [156, 157]
    books.expected[COMMANDS] = 158
    assert await books._getmany({COMMANDS}, 1.0) == {}
    kept = await books._getmany({COMMANDS}, 1.0)  # offsets 158 to 169 are not there
    assert [r.offset for r in kept[COMMANDS]] == [170, 171] and sought == [156, 158]
    assert books._gap[COMMANDS].overlaps(158, 170) and not books._gap[COMMANDS].overlaps(170)


async def test_fetches_whose_records_were_taken_before_a_seek_are_dropped_not_taken_for_holes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    taken_before = {COMMANDS: 0}
    fetches = [Fetch({COMMANDS: records(163, 164)}, taken_before),
               Fetch({COMMANDS: records(165, 166)}, taken_before),
               Fetch({COMMANDS: records(156, 157)}, {COMMANDS: 1})]

    async def fetch(self: Consumer, active: Any, timeout: float) -> Any:
        return fetches.pop(0)

    async def seek_wait(self: Consumer, partitions: dict[TP, int]) -> None:
        raise AssertionError("nothing is missing: the seek reads from the committed offset")

    monkeypatch.setattr(aiokafka.Consumer, "_getmany", fetch)
    monkeypatch.setattr(aiokafka.Consumer, "seek_wait", seek_wait)
    books._thread.sought[COMMANDS] = 1  # a rebalance sought back to the committed offset 156
    books.expected[COMMANDS] = 156
    assert await books._getmany({COMMANDS}, 1.0) == {}
    assert await books._getmany({COMMANDS}, 1.0) == {}
    assert [r.offset for r in (await books._getmany({COMMANDS}, 1.0))[COMMANDS]] == [156, 157]
    assert not books._gap[COMMANDS]


async def test_from_a_seek_until_the_flow_control_resumes_no_source_record_is_handed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    fresh = TP("commands", 1)

    async def seek_to_committed(self: Consumer) -> None:
        self._read_offset.update({COMMANDS: 123, fresh: None})

    async def remember_ends(self: Consumer) -> None:
        return None

    async def fetched(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for offset in (123, 124):
            yield COMMANDS, message(offset)

    sought: list[dict[TP, int]] = []

    async def seek_wait(self: Consumer, partitions: dict[TP, int]) -> None:
        sought.append(partitions)

    monkeypatch.setattr(aiokafka.Consumer, "perform_seek", seek_to_committed)
    monkeypatch.setattr(Consumer, "remember_ends", remember_ends)
    monkeypatch.setattr(aiokafka.Consumer, "getmany", fetched)
    monkeypatch.setattr(aiokafka.Consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(app, "_consumer", books)
    books.expected[COMMANDS] = 200
    await books.perform_seek()
    books.fetched_at = books.seeks  # fetches made after the seek
    # Faust's recovery resumed the stream partitions before the seek; its flow control
    # resumes after it and clears the streams' queues.
    assert [m async for _, m in books.getmany(1.0)] == []
    assert books.expected == {COMMANDS: 123, fresh: 0} and sought == []
    FlowControl(app).resume()
    assert [m.offset async for _, m in books.getmany(1.0)] == [123, 124]
    assert sought == [{COMMANDS: 123}]  # at once, not when a later record shows the gap
    assert [m.offset async for _, m in books.getmany(1.0)] == [123, 124]
    assert sought == [{COMMANDS: 123}]


async def test_the_consumer_thread_counts_each_partitions_seeks_and_a_fetch_carries_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread = consumer()._thread
    moved = []
    fetcher = SimpleNamespace(seek_to=lambda tp, offset: moved.append((tp, offset)))
    thread.count_seeks(fetcher)

    async def fetched(self: Any, kafka: Any, active: Any, **_: Any) -> Any:
        return {COMMANDS: records(1), EVENTS: records(7)}

    monkeypatch.setattr(aiokafka.AIOKafkaConsumerThread, "_fetch_records", fetched)
    fetcher.seek_to(COMMANDS, 5)
    fetcher.seek_to(COMMANDS, 6)
    fetch = await thread._fetch_records(None, None)
    assert moved == [(COMMANDS, 5), (COMMANDS, 6)]
    assert fetch.sought == {COMMANDS: 2, EVENTS: 0} and list(fetch) == [COMMANDS, EVENTS]


@pytest.mark.usefixtures("acking")
def test_nothing_is_committed_past_a_committed_offset_not_yet_done() -> None:
    books = consumer()
    books._committed_offset[COMMANDS] = 156
    for offset in (157, 158):
        books.ack(message(offset))
    assert books._new_offset(COMMANDS) is None
    books.ack(message(156))
    assert books._new_offset(COMMANDS) == 159


@pytest.mark.usefixtures("acking")
def test_a_hole_in_the_log_at_the_committed_offset_is_committed_past() -> None:
    books = consumer()
    books._committed_offset[COMMANDS] = 156
    books._gap[COMMANDS].addi(156, 158)
    books.ack(message(158))
    assert books._new_offset(COMMANDS) == 159


async def test_records_already_handed_over_are_not_handed_over_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()

    async def fetch(self: Consumer, active: Any, timeout: float) -> Any:
        return {COMMANDS: records(154, 155, 156, 157)}

    monkeypatch.setattr(aiokafka.Consumer, "_getmany", fetch)
    books.expected[COMMANDS] = 156
    assert [r.offset for r in (await books._getmany({COMMANDS}, 1.0))[COMMANDS]] == [156, 157]


async def test_a_fetch_stops_being_delivered_once_a_seek_begins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()

    async def fetched(self: Consumer, active: Any, timeout: float) -> Any:
        return {COMMANDS: records(0, 1, 2)}

    async def three(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        await self._getmany({COMMANDS}, timeout)
        for offset in range(3):
            yield COMMANDS, message(offset)
            self.seeks += 1  # a rebalance seeks back to the committed offsets

    monkeypatch.setattr(aiokafka.Consumer, "_getmany", fetched)
    monkeypatch.setattr(aiokafka.Consumer, "getmany", three)
    delivered = [m.offset async for _, m in books.getmany(1.0)]
    assert delivered == [0] and books.expected[COMMANDS] == 1


async def test_a_worker_back_from_outside_its_group_restores_its_tables_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    forgotten = []
    table = SimpleNamespace(data=SimpleNamespace(forget_progress=lambda: forgotten.append(1)))
    monkeypatch.setattr(app, "tables", SimpleNamespace(values=lambda: [table],
                                                       changelog_topics=set()))
    await books.on_partitions_assigned({COMMANDS}, 2)
    assert forgotten == []  # the first assignment: nothing lapsed
    books.membership.renewed_at = books.membership.clock() - 3600
    await books.on_partitions_assigned({COMMANDS}, 3)
    assert forgotten == [1] and not books.membership.lapsed()



EVENTS = TP("event-log", 0)


def logged(offset: int, tp: TP = EVENTS) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v%d" % offset, None,
                          1, 2, ())


def fetch_of(monkeypatch: pytest.MonkeyPatch, *offsets: int) -> None:
    """Faust's fetch loop fetching the event log's records at `offsets` and command 4: the
    records as the fetcher returns them, the loop reduced to making the messages it yields."""
    async def fetch(self: Consumer, active: Any, timeout: float) -> Any:
        return {EVENTS: [logged(offset) for offset in offsets], COMMANDS: [logged(4, COMMANDS)]}

    async def loop(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for tp, records in (await self._getmany(None, timeout)).items():
            for record in records:
                yield tp, self._to_message(tp, record)

    monkeypatch.setattr(aiokafka.Consumer, "_getmany", fetch)
    monkeypatch.setattr(aiokafka.Consumer, "getmany", loop)
    monkeypatch.setattr(aiokafka.Consumer, "highwater", lambda self, tp: None)


async def drained(books: Consumer) -> list[tuple[TP, int]]:
    return [(tp, m.offset) async for tp, m in books.getmany(1.0)]


@pytest.mark.usefixtures("acking")
async def test_a_whole_fetch_goes_to_its_handler_and_counts_as_done_only_when_it_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    books._committed_offset[EVENTS] = 10
    seen = []

    async def handler(events: list[Any]) -> None:
        seen.append([event.value for event in events])
        assert books._new_offset(EVENTS) is None  # nothing of this fetch is done yet
        assert len(books.unacked) == 3

    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, handler)
    fetch_of(monkeypatch, 10, 11, 12)
    delivered = [(tp, m.offset) async for tp, m in books.getmany(1.0)]
    assert delivered == [(COMMANDS, 4)] and not seen  # the fetch waits for the handler's task
    assert books.expected[EVENTS] == 13 and books._read_offset[EVENTS] == 12
    await books.handle_fetched()
    assert seen == [[b"v10", b"v11", b"v12"]]
    assert books._new_offset(EVENTS) == 13 and not books.unacked


@pytest.mark.usefixtures("acking")
async def test_a_whole_fetch_is_tracked_a_partition_at_a_time_and_every_sensor_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    told = []
    sensor = SimpleNamespace(on_message_in=lambda tp, offset, message: told.append(offset))
    monkeypatch.setattr(app, "sensors", [app.monitor, sensor])
    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, lambda events: None)
    received = app.monitor.messages_received_by_topic[EVENTS.topic]
    fetch_of(monkeypatch, 10, 11, 12)
    assert await drained(books) == [(COMMANDS, 4)]
    assert told == [10, 11, 12]
    assert app.monitor.messages_received_by_topic[EVENTS.topic] == received + 3
    assert app.monitor.tp_read_offsets[EVENTS] == 12
    assert len(books.unacked) == 3


@pytest.mark.usefixtures("acking")
async def test_fetches_made_while_the_handler_is_busy_hold_up_no_other_topic_and_go_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fetch loop also delivers the commands and their results: held until the projection
    had taken the fetch before, a command waited behind the fold of every small fetch of the
    event log."""
    books = consumer()
    books._committed_offset[EVENTS] = 10
    seen = []

    async def handler(events: list[Any]) -> None:
        seen.append([event.value for event in events])

    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, handler)

    async def three_fetches() -> list[tuple[TP, int]]:
        delivered = []
        for offsets in ((10, 11), (12,), (13,)):
            fetch_of(monkeypatch, *offsets)
            delivered += [(tp, m.offset) async for tp, m in books.getmany(1.0)]
        return delivered

    fetching = asyncio.ensure_future(three_fetches())
    for _ in range(10):
        await asyncio.sleep(0)
    assert fetching.done(), "the fetch loop waits for the event log's handler"
    assert fetching.result() == [(COMMANDS, 4)] and not seen  # fetched 3 times, handed once
    await books.handle_fetched()
    assert seen == [[b"v10", b"v11", b"v12", b"v13"]]
    assert books._new_offset(EVENTS) == 14 and not books.unacked


@pytest.mark.usefixtures("acking")
async def test_two_topics_handlers_run_side_by_side_and_their_records_are_done_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command handler waits for its events' acks meanwhile: in turn, it waited for every
    fold of the event log, and the fold for it."""
    books = consumer()
    commands_handled = asyncio.Event()

    async def fold(events: list[Any]) -> None:
        await commands_handled.wait()

    async def decide(commands: list[Any]) -> None:
        commands_handled.set()

    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, fold)
    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, COMMANDS.topic, decide)
    fetch_of(monkeypatch, 10, 11)
    assert await drained(books) == []
    await asyncio.wait_for(books.handle_fetched(), 10)
    assert books._new_offset(EVENTS) == 12 and books._new_offset(COMMANDS) == 5
    assert not books.unacked


@pytest.mark.usefixtures("acking")
async def test_a_full_backlog_holds_the_fetch_loop_until_the_handler_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    books.backlog = 2
    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, lambda events: asyncio.sleep(0))
    fetch_of(monkeypatch, 10, 11)
    fetching = asyncio.ensure_future(drained(books))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not fetching.done() and len(books.fetched) == 2
    await books.handle_fetched()
    assert await asyncio.wait_for(fetching, 5) == [(COMMANDS, 4)] and not books.fetched


@pytest.mark.usefixtures("acking")
async def test_a_fetch_whose_handler_fails_or_that_a_rebalance_drops_is_not_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    books._committed_offset[EVENTS] = 10

    async def stopping(events: list[Any]) -> None:
        raise asyncio.CancelledError  # the worker stops in the middle of the fold

    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, stopping)
    fetch_of(monkeypatch, 10, 11)
    [m async for _, m in books.getmany(1.0)]
    with pytest.raises(asyncio.CancelledError):
        await books.handle_fetched()
    assert books._new_offset(EVENTS) is None and not books.unacked

    books._read_offset.clear()  # the seek of a rebalance reads them again
    books.expected.clear()
    [m async for _, m in books.getmany(1.0)]
    assert books.unacked
    books.stop_flow()  # a rebalance begins before the handler takes the fetch
    assert not books.fetched and not books.unacked
    assert books._new_offset(EVENTS) is None


@pytest.mark.usefixtures("acking")
async def test_a_rebalance_releases_a_fetch_loop_held_by_a_full_backlog_and_drops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()
    books._committed_offset[EVENTS] = 10
    books.backlog = 2
    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, lambda events: None)
    fetch_of(monkeypatch, 10, 11)
    fetching = asyncio.ensure_future(drained(books))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not fetching.done()
    books.stop_flow()
    assert await asyncio.wait_for(fetching, 5) == [(COMMANDS, 4)]
    assert not books.fetched and not books.unacked and books._new_offset(EVENTS) is None


async def test_a_fetch_made_stale_by_a_seek_is_not_handed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    books = consumer()

    async def seeking(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        await self._getmany(None, timeout)
        self.seeks += 2  # a rebalance sought back while the fetch was being read
        yield COMMANDS, message(4)

    monkeypatch.setitem(faust_patches.WHOLE_FETCHES, EVENTS.topic, lambda events: None)
    fetch_of(monkeypatch, 10)
    monkeypatch.setattr(aiokafka.Consumer, "getmany", seeking)
    assert [m async for _, m in books.getmany(1.0)] == []
    assert not books.fetched and not books.unacked


class BulkStore:
    """A table's store that writes changelog records in bulk, as streams.store.Store does."""

    def __init__(self) -> None:
        self.written: list[tuple[TP, list[int]]] = []

    def write_restored(self, tp: TP, records: list[Message]) -> None:
        self.written.append((tp, [record.offset for record in records]))


@pytest.mark.parametrize("whole", [True, False])
async def test_a_standbys_changelog_records_go_to_its_store_a_fetch_at_a_time(
    monkeypatch: pytest.MonkeyPatch, whole: bool,
) -> None:
    changelog = "orders-changelog"
    standby, active = TP(changelog, 0), TP(changelog, 1)
    recovery = app.tables.recovery
    store = BulkStore()
    monkeypatch.setattr(type(app.tables), "changelog_topics", property(lambda _: {changelog}))
    monkeypatch.setattr(app, "whole_standbys", whole)
    monkeypatch.setattr(recovery, "standby_tps", {standby})
    monkeypatch.setattr(recovery, "active_tps", {active})
    monkeypatch.setattr(recovery, "tp_to_table", {standby: SimpleNamespace(data=store),
                                                  active: SimpleNamespace(data=store)})
    monkeypatch.setattr(recovery, "standby_offsets", Counter({standby: 4}))

    async def fetch(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for tp, offset in [(standby, 3), (standby, 4), (active, 7), (standby, 5), (standby, 6)]:
            yield tp, Message(changelog, tp.partition, offset, 0.0, 0, [], b"k", b"v", None,
                              tp=tp)

    monkeypatch.setattr(aiokafka.Consumer, "getmany", fetch)
    delivered = await drained(consumer())
    if whole:
        assert delivered == [(active, 7)]  # an active partition's recovery is Faust's
        assert store.written == [(standby, [5, 6])] and recovery.standby_offsets[standby] == 6
    else:
        assert [offset for tp, offset in delivered if tp == standby] == [3, 4, 5, 6]
        assert store.written == []


async def test_a_standby_made_active_while_its_fetch_is_read_hands_the_records_to_recovery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker back in its group: a changelog partition it held as a standby is now active,
    and its recovery sought it before the fetch that brought its records (all of them, for a
    small changelog). Dropped as a revoked standby's, the recovery waited for them for ever."""
    changelog = "orders-changelog"
    tp = TP(changelog, 0)
    recovery = app.tables.recovery
    store = BulkStore()
    monkeypatch.setattr(type(app.tables), "changelog_topics", property(lambda _: {changelog}))
    monkeypatch.setattr(app, "whole_standbys", True)
    monkeypatch.setattr(recovery, "standby_tps", {tp})
    monkeypatch.setattr(recovery, "active_tps", set())
    monkeypatch.setattr(recovery, "tp_to_table", {tp: SimpleNamespace(data=store)})
    monkeypatch.setattr(recovery, "standby_offsets", Counter())

    async def fetch(self: Consumer, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        recovery.standby_tps.discard(tp)  # the new assignment lands while the fetch is read
        recovery.active_tps.add(tp)
        for offset in (0, 1, 2):
            yield tp, Message(changelog, 0, offset, 0.0, 0, [], b"k", b"v", None, tp=tp)

    monkeypatch.setattr(aiokafka.Consumer, "getmany", fetch)
    assert await drained(consumer()) == [(tp, 0), (tp, 1), (tp, 2)]
    assert store.written == []
