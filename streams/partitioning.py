"""Which partition owns a key: Kafka's default (murmur2) partitioner, as Java and aiokafka use."""

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]


def owning_partition(key: str, partitions: int) -> int:
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions
