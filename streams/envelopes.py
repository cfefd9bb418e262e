"""The wire envelopes of commands, events and command results, and their JSON codec."""

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from streams.commands import COMMANDS, Message
from streams.decoding import current_shapes
from streams.events import EVENTS
from streams.upcasting import current_version, upcast

AggregateId = Annotated[str, Field(min_length=1, max_length=200)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TypedEnvelope(Envelope):
    """An envelope whose payload is validated as the class its `type` names."""

    PAYLOADS: ClassVar[dict[str, type[Message]]]

    @field_validator("payload", mode="wrap", check_fields=False)
    @classmethod
    def _payload(cls, value: Any, _: Any, info: ValidationInfo) -> Any:
        type_name = info.data.get("type")
        if type_name is None or isinstance(value, Message):
            return value  # an unknown type is already reported on the `type` field
        return cls.PAYLOADS[type_name].model_validate(value)


class Command(TypedEnvelope):
    PAYLOADS = COMMANDS

    command_id: UUID
    type: Literal[tuple(COMMANDS)]  # type: ignore[valid-type]
    aggregate_id: AggregateId
    expected_version: Annotated[int, Field(ge=0)] | None = None
    correlation_id: UUID | None = None
    reply_to: AggregateId | None = None
    issued_at: datetime = Field(default_factory=utc_now)
    payload: SerializeAsAny[Message]


class Event(TypedEnvelope):
    PAYLOADS = EVENTS

    event_id: UUID
    type: Literal[tuple(EVENTS)]  # type: ignore[valid-type]
    schema_version: Annotated[int, Field(ge=1)]
    aggregate_id: AggregateId
    version: Annotated[int, Field(ge=1)]
    command_id: UUID
    correlation_id: UUID
    occurred_at: datetime
    payload: SerializeAsAny[Message]

    @model_validator(mode="before")
    @classmethod
    def _upcast(cls, data: Any) -> Any:
        """A stored event at an older schema version becomes the current one (see
        `streams.upcasting`); an event built here is at its type's current version."""
        if not isinstance(data, dict):
            return data
        if "schema_version" not in data and isinstance(data.get("payload"), Message):
            return {**data, "schema_version": current_version(str(data.get("type")))}
        return upcast(data)


class Position(Envelope):
    partition: int
    offset: int


class CommandResult(Envelope):
    command_id: UUID
    type: str
    status: Literal["accepted", "rejected"]
    aggregate_id: AggregateId
    version: int
    positions: list[Position] = []
    reason: str | None = None
    reply_to: AggregateId | None = None


def stamp(command: Command, version: int, payloads: list[Message], at: datetime) -> list[Event]:
    """Wrap decided payloads in envelopes: ids derive from the command, so a retry repeats them."""
    return [
        Event(
            event_id=uuid5(command.command_id, str(index)),
            type=type(payload).__name__,
            schema_version=current_version(type(payload).__name__),
            aggregate_id=command.aggregate_id,
            version=version + index + 1,
            command_id=command.command_id,
            correlation_id=command.correlation_id or command.command_id,
            occurred_at=at,
            payload=payload,
        )
        for index, payload in enumerate(payloads)
    ]


def result_of(command: Command, status: Literal["accepted", "rejected"], version: int, *,
              positions: list[Position] | None = None, reason: str | None = None) -> CommandResult:
    return CommandResult(command_id=command.command_id, type=command.type, status=status,
                         aggregate_id=command.aggregate_id, version=version,
                         positions=positions or [], reason=reason, reply_to=command.reply_to)


COMMANDS_NOW = current_shapes(Command, COMMANDS)
EVENTS_NOW = current_shapes(Event, EVENTS,
                            lambda name: {"schema_version": current_version(name)})


def parse_command(raw: bytes) -> Command:
    """A command in one call to pydantic-core (see `streams.decoding`); one it refuses, such as
    money not written canonically, through the model, which gives the errors."""
    try:
        command: Command = COMMANDS_NOW.validate_json(raw)
    except ValidationError:
        return Command.model_validate_json(raw)
    return command


def parse_event(raw: bytes) -> Event:
    """An event at its type's current version in one call to pydantic-core (see
    `streams.decoding`); any other through the model, which upcasts it or gives the errors."""
    try:
        event: Event = EVENTS_NOW.validate_json(raw)
    except ValidationError:
        return Event.model_validate_json(raw)
    return event


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json().encode()
