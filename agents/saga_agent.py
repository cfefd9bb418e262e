"""The saga's wiring: route its inputs by order id, then react and send its commands."""

import asyncio
import logging
from datetime import UTC, datetime
from functools import partial

from faust import EventT, StreamT
from pydantic import TypeAdapter, ValidationError

from agents.dead_letters import handle_batch_or_park, park
from domain.saga import Input, Reservation, order_of, react
from streams import topics
from streams.app import app, bytes_table, ensure_member, settings
from streams.envelopes import encode
from streams.faust_patches import as_current

log = logging.getLogger(__name__)
SAGA_INPUT: TypeAdapter[Input] = TypeAdapter(Input)
RESERVATIONS = bytes_table("reservation-saga")


async def route_to_saga(event: EventT, message: Input) -> None:
    """Re-key what the saga cares about by its order id, so one saga owns each order."""
    order_id = order_of(message)
    if order_id is not None:
        await topics.reservation_saga.send(key=order_id.encode(), value=event.value)


@app.agent(topics.reservation_saga, concurrency=1)
async def run_saga(stream: StreamT[bytes]) -> None:
    async for records in stream.take_events(settings.batch_size, settings.batch_within):
        inputs = []
        for record in records:
            try:
                inputs.append((record, SAGA_INPUT.validate_json(record.value)))
            except ValidationError as exc:
                await park(record, f"unreadable saga input: {exc}")
        await handle_batch_or_park("saga batch", [record for record, _ in inputs],
                                   partial(steps, inputs))


async def steps(inputs: list[tuple[EventT, Input]]) -> None:
    """React to each input in order, each seeing the state the inputs before it left; send
    every command of the batch, and only once all are acknowledged store the states: a crash
    in between re-sends commands with the same ids, which the command handler applies once."""
    states: dict[bytes, Reservation | None] = {}
    changed: dict[bytes, EventT] = {}
    sent = []
    for record, message in inputs:
        try:
            key = record.key
            if key not in states:
                as_current(record)
                raw = RESERVATIONS.get(key)
                states[key] = Reservation.model_validate_json(raw) if raw is not None else None
            at = datetime.fromtimestamp(record.message.timestamp, UTC)
            new_state, commands = react(states[key], message, at)
        except Exception as exc:  # a bug must park the input, not stop the saga
            log.exception("saga step failed")
            await park(record, f"saga step failed: {type(exc).__name__}: {exc}")
            continue
        sent += [await topics.internal_commands.send(key=cmd.aggregate_id.encode(),
                                                     value=encode(cmd)) for cmd in commands]
        if new_state is not None and new_state != states[key]:
            states[key] = new_state
            changed[key] = record
    await asyncio.gather(*sent)
    await ensure_member()
    for key, record in changed.items():
        as_current(record)
        RESERVATIONS[key] = encode(states[key])
