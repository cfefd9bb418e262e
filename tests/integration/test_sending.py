"""Records handed to aiokafka as whole batches reach the partition in order, and the offset
`send_batches` gives is the last record's: a view build stores it as where its changelog
has reached, so one too far would skip records at the next restore."""

from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.sending import send_batches
from tests.integration.cluster import Kafka

pytestmark = pytest.mark.integration


async def test_records_sent_in_several_batches_arrive_in_order_ending_at_the_offset_given(
        kafka: Kafka) -> None:
    topic = f"sending-{uuid4().hex[:8]}"
    await kafka.create_topic(topic, partitions=2)
    records = [(f"k{n}".encode(), b"x" * 400 + str(n).encode()) for n in range(50)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, max_batch_size=4096)
    await producer.start()
    try:
        assert await send_batches(producer, topic, 1, []) is None
        first = await send_batches(producer, topic, 1, records[:5])
        last = await send_batches(producer, topic, 1, records[5:])  # 4 KB batches: several
    finally:
        await producer.stop()
    assert (first, last) == (4, 49)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 1)
        consumer.assign([tp])
        read = []
        while len(read) < len(records):
            read += (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
        assert (await consumer.end_offsets([tp]))[tp] == last + 1
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in read] == records
