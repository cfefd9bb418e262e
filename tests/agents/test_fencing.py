"""A worker out of its group after a stop sends nothing: not what it hands to its producer
from then on, and not what aiokafka's accumulator already holds (no broker needed: nothing
may leave the accumulator)."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streams.faust_patches import fence_accumulator
from streams.membership import Fenced


async def test_the_accumulator_fails_its_batches_instead_of_sending_them_once_stopped() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")
    accumulator = producer._message_accumulator
    stopped = False
    fence_accumulator(accumulator, lambda: stopped)
    tp = TopicPartition("orders", 0)
    held = [await accumulator.add_message(tp, b"k", b"v%d" % n, timeout=1) for n in range(3)]
    assert accumulator.drain_by_nodes(ignore_nodes=set())[0] == {}  # no leader known: kept
    assert not any(future.done() for future in held)
    stopped = True
    accumulator.drain_by_nodes(ignore_nodes=set())
    await asyncio.sleep(0)
    for future in held:
        with pytest.raises(Fenced):
            future.result()
