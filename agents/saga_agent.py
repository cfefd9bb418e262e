"""The saga's wiring: route its inputs by order id, then react and send its commands."""

from datetime import UTC, datetime
from functools import partial

from faust import EventT, StreamT
from pydantic import TypeAdapter, ValidationError

from agents.dead_letters import handle_or_park, park
from agents.saga import Input, Reservation, order_of, react
from streams import topics
from streams.app import app, bytes_table
from streams.envelopes import encode

SAGA_INPUT: TypeAdapter[Input] = TypeAdapter(Input)
RESERVATIONS = bytes_table("reservation-saga")


@app.agent(topics.command_results, concurrency=1)
async def route_results_to_saga(stream: StreamT[bytes]) -> None:
    async for event in stream.events():
        await route(event)


async def route(event: EventT) -> None:
    try:
        message = SAGA_INPUT.validate_json(event.value)
    except ValidationError:
        return  # parked by the results view, which reads this topic too
    await route_parsed(event, message)


async def route_parsed(event: EventT, message: Input) -> None:
    """Re-key what the saga cares about by its order id, so one saga owns each order."""
    order_id = order_of(message)
    if order_id is not None:
        await topics.reservation_saga.send(key=order_id.encode(), value=event.value)


@app.agent(topics.reservation_saga, concurrency=1)
async def run_saga(stream: StreamT[bytes]) -> None:
    async for event in stream.events():
        try:
            message = SAGA_INPUT.validate_json(event.value)
        except ValidationError as exc:
            await park(event, f"unreadable saga input: {exc}")
            continue
        await handle_or_park("saga step", event, partial(step, message))


async def step(message: Input, event: EventT) -> None:
    key = event.key
    raw = RESERVATIONS.get(key)
    state = Reservation.model_validate_json(raw) if raw is not None else None
    at = datetime.fromtimestamp(event.message.timestamp, UTC)
    new_state, commands = react(state, message, at)
    # Commands first, acknowledged, then the state: a crash in between re-sends
    # commands with the same ids, which the command handler applies once.
    sent = [await topics.commands.send(key=cmd.aggregate_id.encode(), value=encode(cmd))
            for cmd in commands]
    for future in sent:
        await future
    if new_state is not None and new_state != state:
        RESERVATIONS[key] = encode(new_state)
