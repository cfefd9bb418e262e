"""A client of the shop that writes commands to Kafka and remembers what it sent: the load."""

import asyncio
import random
from typing import Any
from uuid import UUID

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from tests.integration.cluster import Results


class Shop:
    """Writes commands like a client would, and remembers what it sent.

    With `acked`, each command is sent alone and retried until the broker acknowledges it
    (a fault test's broker may be away for a while); a command counts as sent once acked.
    """

    def __init__(self, producer: AIOKafkaProducer, prefix: str, results: Results,
                 seed: int, acked: bool = False) -> None:
        self.producer, self.topic, self.results = producer, f"{prefix}.commands", results
        self.rng = random.Random(seed)
        self.acked = acked
        self.sent: dict[str, dict[str, Any]] = {}
        self.resent = 0

    def command_id(self) -> str:
        return str(UUID(int=self.rng.getrandbits(128), version=4))

    async def send(self, kind: str, aggregate_id: str, payload: dict[str, Any],
                   **extra: Any) -> str:
        command = {"command_id": self.command_id(), "type": kind, "aggregate_id": aggregate_id,
                   "payload": payload, **extra}
        await self._produce(command)
        self.sent[command["command_id"]] = command
        return command["command_id"]

    async def resend(self, command: dict[str, Any]) -> None:
        await self._produce(command)
        self.resent += 1

    async def _produce(self, command: dict[str, Any]) -> None:
        value, key = orjson.dumps(command), command["aggregate_id"].encode()
        if not self.acked:
            await self.producer.send(self.topic, value, key=key)
            return
        while True:
            try:
                await self.producer.send_and_wait(self.topic, value, key=key)
                return
            except KafkaError:
                await asyncio.sleep(1.0)

    async def settle(self, command_ids: list[str], timeout: float = 180) -> list[dict[str, Any]]:
        await self.producer.flush()
        return [await self.results.wait_for(c, timeout=timeout) for c in command_ids]
