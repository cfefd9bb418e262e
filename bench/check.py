"""Each phase's check: its final state against the fold of the generated events."""

import asyncio
import random
from collections.abc import Callable

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.data import Expected, canonical

SHOWN = 3  # differences quoted in a failed check


async def read_changelog(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """The last value of every key on a topic, read from the start to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic)
                                      or await _partitions(consumer, topic))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        last: dict[bytes, bytes] = {}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=50_000)).values():
                for record in records:
                    if record.value is None:
                        last.pop(record.key, None)
                    else:
                        last[record.key] = record.value
    finally:
        await consumer.stop()
    return last


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a topic this client has not seen yet
    found = consumer.partitions_for_topic(topic)
    if not found:
        raise LookupError(f"no topic {topic}")
    return set(found)


def compare_rows(expected: Expected, actual: dict[str, bytes]) -> str | None:
    """None if every sku's row is as expected, else what differs."""
    missing = [sku for sku in expected.rows if sku not in actual]
    extra = [sku for sku in actual if sku not in expected.rows]
    wrong = [sku for sku, row in actual.items()
             if sku in expected.rows and row != expected.rows[sku]]
    if not (missing or extra or wrong):
        return None
    quoted = "; ".join(f"{sku}: got {actual[sku]!r}, want {expected.rows[sku]!r}"
                       for sku in wrong[:SHOWN])
    return (f"{len(missing)} missing, {len(extra)} unexpected, {len(wrong)} wrong of "
            f"{len(expected.rows)} rows; missing {missing[:SHOWN]}, unexpected {extra[:SHOWN]} "
            f"{quoted}").strip()


async def changelog_rows(bootstrap: str, topic: str,
                         key_of: Callable[[bytes], str | None]) -> dict[str, bytes]:
    """Rows from a changelog, canonical; `key_of` maps a changelog key to a sku or None."""
    rows = {}
    for key, value in (await read_changelog(bootstrap, topic)).items():
        sku = key_of(key)
        if sku is not None:
            rows[sku] = canonical(_json(value))
    return rows


def _json(value: bytes) -> object:
    decoded = orjson.loads(value)
    # Faust's default value serializer wraps a bytes value as a JSON string.
    return orjson.loads(decoded) if isinstance(decoded, str) else decoded


async def http_sample(url: str, expected: Expected, size: int, seed: int = 6) -> str | None:
    """Read a seeded sample of skus over GET /views/products/{sku}; None if all are right."""
    skus = sorted(expected.rows)
    sample = skus if size >= len(skus) else random.Random(seed).sample(skus, size)
    limit = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(*(_view_row(http, url, sku, limit) for sku in sample))
    wrong = [(sku, got) for sku, got in zip(sample, answers, strict=True)
             if got != orjson.loads(expected.rows[sku])["data"]]
    if not wrong:
        return None
    quoted = "; ".join(f"{sku}: got {got!r}" for sku, got in wrong[:SHOWN])
    return f"{len(wrong)} of {len(sample)} sampled rows differ over HTTP: {quoted}"


async def _view_row(http: aiohttp.ClientSession, url: str, sku: str,
                    limit: asyncio.Semaphore) -> object:
    async with limit, http.get(f"{url}/views/products/{sku}") as response:
        body = await response.json(content_type=None)
        return body.get("data") if response.status == 200 else {"status": response.status}
