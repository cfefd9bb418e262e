"""Records for one partition handed to an aiokafka producer as whole batches: one future
per batch instead of one per record."""

from collections.abc import Iterable, Iterator
from typing import Any

from aiokafka import AIOKafkaProducer


def batches(producer: Any, records: Iterable[tuple[bytes, bytes]],
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


async def send_batches(producer: AIOKafkaProducer, topic: str, partition: int,
                       records: Iterable[tuple[bytes, bytes]]) -> int | None:
    """Send `records` to one partition and wait until the broker has them all; the offset of
    the last (None when there were none)."""
    sent = []
    for batch, keys in batches(producer, records):
        batch.close()  # its offsets are counted from its first record's
        sent.append((await producer.send_batch(batch, topic, partition=partition), len(keys)))
    last = None
    for future, count in sent:
        last = (await future).offset + count - 1
    return last
