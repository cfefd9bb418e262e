"""`dlq list` and `dlq replay`: look at the dead-letter topic, and re-submit what was parked."""

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from agents.dead_letters import DeadLetter
from streams.verify import read_topic


async def parked(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every dead letter once (a record parked twice, after a redelivery, has one id)."""
    letters: dict[str, DeadLetter] = {}
    for record in await read_topic(bootstrap, topic):
        try:
            letter = DeadLetter.model_validate_json(record.value)
        except ValidationError:
            continue
        letters.setdefault(str(letter.dead_letter_id), letter)
    return list(letters.values())


async def replay(bootstrap: str, letters: list[DeadLetter]) -> None:
    """Produce each parked record again, as it came, to the topic it came from.

    Replaying twice changes nothing: commands are deduplicated by command id, events by
    aggregate version, results by command id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for letter in letters:
            key, value = letter.original()
            await producer.send_and_wait(letter.source_topic, value, key=key)
    finally:
        await producer.stop()
