"""streams/faust_patches/ changes Faust's private internals; these tests fail loudly when an
upgrade of faust-streaming (or aiokafka, or mode) changes the upstream code a patch relies on.

When one fails: read the upstream change, re-check the patch that names it in
streams/faust_patches/ (and the fault suite), then record the new fingerprint here.
"""

import asyncio
import hashlib
import importlib
import inspect
from typing import Any

import pytest
from faust.tables.recovery import RebalanceAgain

from streams.app import app
from streams.faust_patches import FETCH_WAIT_MS, Consumer, Recovery, Transport

UPSTREAM = {
    # Seeks counted per partition on the consumer's thread: every seek moves the fetcher with
    # `Fetcher.seek_to`, and a fetch takes its records in one step at the end of `_fetch_records`.
    "aiokafka.consumer.fetcher.Fetcher.seek_to": "f0ba6aba6c22ef83",
    "aiokafka.consumer.fetcher.Fetcher.fetched_records": "be4348896b9b66af",
    "aiokafka.consumer.consumer.AIOKafkaConsumer.seek_to_committed": "f6cd85c8b70a4ccf",
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._fetch_records": "39a2c6c79fc1455a",
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.on_start": "38b4e8bd1e10723a",
    # A worker's fetches wait FETCH_WAIT_MS, not Faust's fixed 1,500 ms.
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer":
        "c2701bfc3e6f6cad",
    "aiokafka.consumer.consumer.AIOKafkaConsumer.__init__": "01506f316191f7c9",
    "faust.tables.manager.TableManager.on_start": "365dd25fbc0e0684",
    "aiokafka.consumer.group_coordinator.GroupCoordinator._do_heartbeat": "dc1d6632aaa68e96",
    "faust.transport.consumer.Consumer.ack": "5fcf41cf45153475",
    "faust.transport.consumer.Consumer.on_partitions_assigned": "29ce96596f05a18c",
    "faust.transport.consumer.Consumer.perform_seek": "0e8c130ff4b0afd8",
    "faust.transport.consumer.Consumer._new_offset": "1d2c7ea89a7ad4f1",
    "faust.transport.consumer.Consumer.getmany": "4b168d84882a70d6",
    "faust.transport.consumer.Consumer.stop_flow": "cf7e875a2b0d40e8",
    "faust.transport.consumer.Consumer._drain_messages": "44a2500309e83c63",
    "faust.transport.consumer.Consumer.seek_wait": "663c0cec70b3dfbb",
    # Whole fetches: handed over as `_drain_messages` hands records to streams.
    "faust.transport.consumer.Consumer.track_message": "217d7f1399a4cd8e",
    "faust.transport.consumer.Consumer._add_gap": "4df2573ded7c1c2c",
    "faust.app.base.App.create_event": "15fea3d1e95e6625",
    "faust.transport.drivers.aiokafka.Consumer._new_consumer_thread": "0870ec53dea75083",
    "faust.transport.drivers.aiokafka.Consumer._getmany": "f9d47aa9010b5ff2",
    "faust.transport.drivers.aiokafka.Consumer._is_changelog_tp": "88867d75cfe9aecf",
    "mode.services.Service.wait_first": "feade6a31f8a6789",
    "faust.tables.base.Collection._verify_source_topic_partitions": "6814da56b0d83f93",
    "faust.app.base.App._new_transport": "42db531312dd776f",
    "faust.streams.Stream.take_events": "607d48aead118ba8",
    "faust.streams.current_event": "3b821f1a78d86a58",
    "faust.stores.rocksdb.Store._db_for_partition": "cb7e67d5f9efc4bc",
    "faust.stores.rocksdb.Store.apply_changelog_batch": "ea3344d369fc4ab5",
    "faust.stores.rocksdb.Store.persisted_offset": "6f2e502fb86043a1",
    "faust.stores.rocksdb.Store.set_persisted_offset": "b4c811926678346e",
    # Standby records applied a fetch at a time: the books Faust's recovery loop keeps per record.
    "faust.tables.recovery.Recovery._slurp_changelogs.fun": "7825c7e50f766d5a",
    # The bulk restore: Faust's recovery waits in `_wait` for it, revocations cancel it.
    "faust.tables.recovery.Recovery.on_rebalance": "aa4d997a1795ceae",
    "faust.tables.recovery.Recovery.on_partitions_revoked": "161b5e997f7cbfef",
    "faust.tables.recovery.Recovery._wait": "ec7429b70176f8c6",
    "faust.tables.recovery.Recovery._restart_recovery.fun": "6bd8a8558a2dffe4",
    "faust.tables.recovery.Recovery._set_recovery_started": "bcfebf81ae13fc75",
    "faust.tables.recovery.Recovery.on_stop": "766b9af50a72dc22",
    "faust.tables.manager.TableManager.recovery.fget": "f0bf5de78b4c3d23",
    "faust.tables.manager.TableManager.on_rebalance": "2d2c23a07bf54328",
    "faust.tables.manager.TableManager.on_partitions_revoked": "382852adff42ab99",
    "faust.app.base.App._on_partitions_assigned": "de932b7927db85b3",
    "faust.transport.drivers.aiokafka.Producer._new_producer": "e72355c3430ed02f",
    "faust.transport.producer.Producer.__init__": "5c53a4b47aa1372b",
    "faust.transport.producer.ProducerBuffer.__post_init__": "ea072d7b80cf8af6",
    "faust.transport.producer.ProducerBuffer.flush": "26fbebb124ad9c98",
    "faust.transport.producer.ProducerBuffer.flush_atmost": "4966e8c5f9b42eb9",
    "faust.transport.producer.ProducerBuffer._send_pending": "4a9d5f932b56bc68",
    "faust.transport.producer.ProducerBuffer._handle_pending.fun": "78d648030fd21016",
    "faust.transport.drivers.aiokafka.Producer.flush": "36d0cb3615f65b01",
    "faust.transport.drivers.aiokafka.Producer.send": "0b5bd08f52e5e2a9",
    "faust.topics.Topic._on_published": "7cfe9ebd65964b0a",
    # Rows written behind: changelog records as whole batches, counted from the first offset,
    # awaited by the producer flush that Faust's commit runs before committing.
    "faust.transport.consumer.Consumer._commit_offsets": "1a69799041188441",
    "faust.transport.drivers.aiokafka.Producer._ensure_producer": "5592a4bbdf251325",
    "aiokafka.producer.producer.AIOKafkaProducer.send_batch": "bf42b0f0c5c0646d",
    # track_every_topic: a topic already in the metadata is returned untracked, and a refresh
    # asks for the tracked topics alone once there is one.
    "aiokafka.client.AIOKafkaClient._wait_on_metadata": "52b0a5ee78ef3aa0",
    "aiokafka.client.AIOKafkaClient._metadata_update": "06dc51ed3e0d38b8",
    "aiokafka.producer.message_accumulator.MessageBatch.done": "2d765e5c2dc8638d",
    "aiokafka.producer.message_accumulator.MessageAccumulator.drain_by_nodes":
        "fc995afbfc5718e2",
    "aiokafka.producer.message_accumulator.MessageBatch.failure": "719b2122c318e955",
    "aiokafka.producer.message_accumulator.MessageBatch.drain_ready": "9a6a2b6c56f8280d",
    # A topic missing from the leader's metadata is assigned by its declared partitions: the
    # cluster is read there alone.
    "faust.assignor.partition_assignor.PartitionAssignor._get_copartitioned_groups":
        "82b7a3764ad596f6",
    "faust.assignor.partition_assignor.PartitionAssignor._perform_assignment":
        "1e0bf2c5c8f42574",
}
"""What each patch overrides, wraps or reads, and the fingerprint of its source as patched."""

BOOKS = ("_acked", "_acked_index", "_gap", "_read_offset", "_committed_offset",
         "_unacked_messages")
"""The consumer's offset books that the patched consumer reads and clears."""


def resolve(name: str) -> Any:
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(name)


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_the_upstream_code_a_patch_relies_on_is_unchanged(name: str) -> None:
    source = inspect.getsource(resolve(name))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == UPSTREAM[name], (
        f"{name} changed upstream: re-check the patch in streams/faust_patches/")


def test_the_consumer_still_keeps_the_books_the_patches_read() -> None:
    async def ignore(*_: Any) -> None:
        return None

    consumer = Transport(app.conf.broker_consumer, app).create_consumer(
        callback=ignore, on_partitions_revoked=ignore, on_partitions_assigned=ignore)
    assert isinstance(consumer, Consumer)
    assert [book for book in BOOKS if not hasattr(consumer, book)] == []


async def test_a_workers_fetch_waits_for_records_at_most_fetch_wait_ms() -> None:
    async def ignore(*_: Any) -> None:
        return None

    consumer = Transport(app.conf.broker_consumer, app).create_consumer(
        callback=ignore, on_partitions_revoked=ignore, on_partitions_assigned=ignore)
    kafka_consumer = consumer._thread._create_worker_consumer(consumer.transport)
    assert kafka_consumer._fetch_max_wait_ms == FETCH_WAIT_MS < 1500


def test_the_current_event_is_still_a_context_variable() -> None:
    from faust import streams

    assert type(streams._current_event).__name__ == "ContextVar"


async def test_every_step_of_faust_recovery_waits_for_the_bulk_restore() -> None:
    recovery = app.tables.recovery
    assert isinstance(recovery, Recovery) and recovery.restorer is not None
    restored = asyncio.Event()
    recovery.restoring = asyncio.ensure_future(restored.wait())
    step_ran = asyncio.Event()

    async def step() -> None:
        step_ran.set()

    waiting = asyncio.ensure_future(recovery._wait(step()))
    await asyncio.sleep(0.1)
    assert not step_ran.is_set()
    restored.set()
    await asyncio.wait_for(waiting, 30)
    assert step_ran.is_set()


async def test_a_newer_rebalance_interrupts_the_wait_and_a_revocation_cancels_the_restore(
) -> None:
    recovery = app.tables.recovery
    assert isinstance(recovery, Recovery)
    recovery.restoring = asyncio.ensure_future(asyncio.Event().wait())
    waiting = asyncio.ensure_future(recovery._wait(asyncio.sleep(0)))
    await asyncio.sleep(0.1)
    recovery.signal_recovery_start.set()
    try:
        with pytest.raises(RebalanceAgain):
            await asyncio.wait_for(waiting, 30)
    finally:
        recovery.signal_recovery_start.clear()
    restoring = recovery.restoring
    recovery.on_partitions_revoked(set())
    await asyncio.gather(restoring, return_exceptions=True)
    assert restoring.cancelled()
    step_ran = asyncio.Event()

    async def step() -> None:
        step_ran.set()

    # Faust's recovery of the revoked assignment must not run on during the rebalance.
    held = asyncio.ensure_future(recovery._wait(step()))
    await asyncio.sleep(0.1)
    assert not held.done() and not step_ran.is_set()
    recovery.signal_recovery_start.set()
    try:
        with pytest.raises(RebalanceAgain):
            await asyncio.wait_for(held, 30)
    finally:
        recovery.signal_recovery_start.clear()
    assert not step_ran.is_set()
    await recovery.stop_restoring()
    assert recovery.restoring is None


async def test_an_idle_batch_stream_sleeps_until_its_first_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's take_events woke every `within` (0.01 s) with nothing to do (47 times here); ours
    waits once for the first event. The other agent tests hold its batches to Faust's."""
    from faust import Stream

    from agents.results import read_results

    waits = 0
    wait_for_stopped = Stream.wait_for_stopped

    async def counted(self: Any, *args: Any, **kwargs: Any) -> bool:
        nonlocal waits
        waits += 1
        return await wait_for_stopped(self, *args, **kwargs)

    monkeypatch.setattr(Stream, "wait_for_stopped", counted)
    async with read_results.test_context():
        await asyncio.sleep(0.5)
    assert waits <= 2, f"{waits} wake-ups in 0.5 s with no event"
