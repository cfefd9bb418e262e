"""The outbox relay: rows of an outbox table become commands on the commands topic, keyed by
aggregate, the row's id as the command id; a row is deleted only after the broker has it."""

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from ops.outbox_sources import OutboxRow, OutboxSource, open_source
from ops.progress import Reporter
from ops.verify import connection
from streams.dead_letters import DeadLetter, dead_letter
from streams.envelopes import Command, encode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destinations:
    commands: str
    dead_letters: str


@dataclass
class Published:
    rows: int = 0
    dead_letters: int = 0


def command_id_of(table: str, row_id: str) -> UUID:
    """The row's id when it is a UUID; else a UUID derived from the table and the id, so a
    row published twice carries the same command id either way."""
    try:
        return UUID(row_id)
    except ValueError:
        return uuid5(NAMESPACE_URL, f"outbox:{table}/{row_id}")


def command_of(row: OutboxRow, table: str) -> Command:
    """The command a row asks for; raises ValueError when it is not a valid one."""
    if row.payload is None:
        raise ValueError("the row has no payload")
    try:
        payload = orjson.loads(row.payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the payload is not JSON: {exc}") from exc
    fields = {"command_id": command_id_of(table, row.id), "type": row.type,
              "aggregate_id": row.aggregateid, "payload": payload}
    if row.created_at is not None:
        fields["issued_at"] = as_utc(row.created_at)
    try:
        return Command.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(f"not a valid command: {exc}") from exc


def as_utc(value: datetime | str) -> datetime:
    """A time without a zone is UTC; raises ValueError when it is no ISO 8601 time."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ValueError(f"created_at is not an ISO 8601 time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def row_bytes(row: OutboxRow) -> bytes:
    return orjson.dumps({
        "id": row.id, "aggregatetype": row.aggregatetype, "aggregateid": row.aggregateid,
        "type": row.type, "payload": row.payload,
        "created_at": (row.created_at.isoformat() if isinstance(row.created_at, datetime)
                       else row.created_at),
    })


def key_of(row: OutboxRow) -> bytes | None:
    return row.aggregateid.encode() if row.aggregateid is not None else None


def letter_of(row: OutboxRow, table: str, error: str) -> DeadLetter:
    """Its source is `outbox:<table>`, partition 0, the row's position as the offset."""
    return dead_letter(f"outbox:{table}", 0, row.position, key_of(row), row_bytes(row),
                       f"outbox row {row.id}: {error}")


async def publish(producer: AIOKafkaProducer, rows: list[OutboxRow], table: str,
                  to: Destinations) -> int:
    """Send every row, a command or a dead letter, and wait until the broker has them all;
    returns how many were dead letters."""
    acks: list[Awaitable[object]] = []
    letters = 0
    for row in rows:
        try:
            command = command_of(row, table)
        except ValueError as exc:
            letter = letter_of(row, table, str(exc))
            log.warning("outbox row %s of %s is not a valid command; dead letter %s",
                        row.id, table, letter.dead_letter_id)
            acks.append(await producer.send(to.dead_letters, encode(letter), key=key_of(row)))
            letters += 1
            continue
        acks.append(await producer.send(to.commands, encode(command),
                                        key=command.aggregate_id.encode()))
    await asyncio.gather(*acks)
    return letters


async def relay(source: OutboxSource, producer: AIOKafkaProducer, to: Destinations,
                reporter: Reporter, batch: int = 500, poll: float = 0.2,
                until_empty: bool = False, backoff: float = 5.0) -> Published:
    """Publish the outbox, oldest committed row first, for ever (or until it is empty)."""
    published = Published()
    while True:
        rows = await asyncio.to_thread(source.fetch, batch)
        if not rows:
            if until_empty:
                return published
            await asyncio.sleep(poll)
            continue
        try:
            letters = await publish(producer, rows, source.table, to)
        except KafkaError as exc:
            log.warning("the broker did not take %d outbox rows (%s); again in %.0f s",
                        len(rows), exc, backoff)
            await asyncio.sleep(backoff)
            continue
        await asyncio.to_thread(source.delete, [row.position for row in rows])
        published.rows += len(rows)
        published.dead_letters += letters
        reporter.advance(len(rows))


async def run(dsn: str, table: str, bootstrap: str, to: Destinations, *, create: bool = False,
              batch: int = 500, poll: float = 0.2, until_empty: bool = False,
              quiet: bool = False, linger_ms: int = 2) -> Published:
    """Open the outbox, become its only relay, and relay it."""
    source = await asyncio.to_thread(open_source, dsn, table)
    try:
        if create:
            await asyncio.to_thread(source.create)
        await asyncio.to_thread(source.check)
        while not await asyncio.to_thread(source.claim):
            log.warning("another relay holds outbox %s; waiting for it to stop", table)
            await asyncio.sleep(2)
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=linger_ms,
                                    **connection(bootstrap))
        await producer.start()
        try:
            with Reporter(f"published from {table}", quiet=quiet) as reporter:
                return await relay(source, producer, to, reporter, batch, poll, until_empty)
        finally:
            await producer.stop()
    finally:
        await asyncio.to_thread(source.close)
