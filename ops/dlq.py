"""`dlq list`, `dlq replay` and `dlq discard`: look at the dead-letter topic, re-submit what
was parked, or give it up; either way the letter stops waiting."""

from typing import Literal

from aiokafka import AIOKafkaProducer

from ops.verify import read_topic
from streams.dead_letters import DeadLetter, Ledger, Resolution
from streams.envelopes import encode, utc_now


async def ledger(bootstrap: str, topic: str) -> Ledger:
    """Every dead letter once (a record parked twice, after a redelivery, has one id)."""
    found = Ledger()
    for record in await read_topic(bootstrap, topic):
        found.observe(record.value)
    return found


def replayable(letter: DeadLetter) -> bool:
    """A row of an outbox table (source `outbox:<table>`) came from no topic to replay it to."""
    return not letter.source_topic.startswith("outbox:")


async def resolve(bootstrap: str, topic: str, letters: list[DeadLetter],
                  how: Literal["replayed", "discarded"]) -> None:
    """Replay each parked record as it came, to the topic it came from (or not, when
    discarding), then mark it resolved.

    Replaying twice changes nothing: commands are deduplicated by command id, events by
    aggregate version, results by command id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for letter in letters:
            if how == "replayed":
                key, value = letter.original()
                await producer.send_and_wait(letter.source_topic, value, key=key)
            marker = Resolution(resolved=letter.dead_letter_id, how=how, resolved_at=utc_now())
            await producer.send_and_wait(topic, encode(marker),
                                         key=str(letter.dead_letter_id).encode())
    finally:
        await producer.stop()
