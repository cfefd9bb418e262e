"""`dlq list`, `dlq replay` and `dlq discard` from the CLI: the dead-letter topic read and
written with plain Kafka clients (the resolving itself is `streams.dead_letters.resolve`)."""

from typing import Literal

from aiokafka import AIOKafkaProducer

from ops.progress import Reporter
from ops.verify import MissingTopic, connection, read_topic
from streams.dead_letters import DeadLetter, Ledger
from streams.dead_letters import resolve as resolve_letters


async def ledger(bootstrap: str, topic: str) -> Ledger:
    """Every dead letter once (a record parked twice, after a redelivery, has one id)."""
    found = Ledger()
    try:
        records = await read_topic(bootstrap, topic)
    except MissingTopic:  # made with the first dead letter
        return found
    for record in records:
        found.observe(record.value)
    return found


def replayable(letter: DeadLetter) -> bool:
    """A row of an outbox table (source `outbox:<table>`) came from no topic to replay it to."""
    return not letter.source_topic.startswith("outbox:")


async def resolve(bootstrap: str, topic: str, letters: list[DeadLetter],
                  how: Literal["replayed", "discarded"], bar: Reporter | None = None) -> None:
    producer = AIOKafkaProducer(acks="all", **connection(bootstrap))
    await producer.start()
    try:
        async def send(target: str, key: bytes | None, value: bytes) -> object:
            sent = await producer.send_and_wait(target, value, key=key)
            if target == topic and bar is not None:  # the resolution marker: one letter done
                bar.advance()
            return sent

        await resolve_letters(letters, how, topic, send)
    finally:
        await producer.stop()
