"""`schema`: the JSON Schema of every command, event (at every schema version) and result, for
producers and consumers in any language."""

from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, create_model

from streams.commands import COMMANDS, INTERNAL, Message, internal_rule
from streams.envelopes import Command, CommandResult, Event
from streams.events import EVENTS, PAST_VERSIONS
from streams.upcasting import current_version


def _typed(base: type[BaseModel], name: str, payload: type[Message],
           **fields: Any) -> type[BaseModel]:
    return create_model(name, __base__=base, type=(Literal[name], ...), payload=(payload, ...),
                        **fields)


def event_versions() -> dict[tuple[str, int], type[Message]]:
    """Every event type at every schema version it has had: its payload model."""
    found = dict(PAST_VERSIONS)
    found |= {(name, current_version(name)): payload for name, payload in EVENTS.items()}
    return found


def _event_schema(name: str, version: int, payload: type[Message]) -> dict[str, Any]:
    pinned = (Literal[version], ...) if version > 1 else (Literal[1], 1)
    return _typed(Event, name, payload, schema_version=pinned).model_json_schema()


def _command(name: str, payload: type[Message]) -> dict[str, Any]:
    """A command's schema, marked `x-internal` when only the reservation saga may issue it."""
    document = _typed(Command, name, payload).model_json_schema()
    internal = name in INTERNAL
    document["x-internal"] = internal
    document["description"] = (
        f"{internal_rule(name)}, on <prefix>.internal-commands; a client that sends it is "
        "rejected" if internal else f"{name}: a public command, on <prefix>.commands")
    return document


def schemas() -> dict[str, dict[str, Any]]:
    """Commands under commands/public/ and commands/internal/, events (each version too), and
    the result."""
    documents = {
        f"commands/{'internal' if name in INTERNAL else 'public'}/{name}": _command(name, payload)
        for name, payload in COMMANDS.items()
    }
    documents |= {f"events/{name}": _event_schema(name, current_version(name), payload)
                  for name, payload in EVENTS.items()}
    documents |= {f"events/{name}.v{version}": _event_schema(name, version, payload)
                  for (name, version), payload in event_versions().items()}
    documents["command-result"] = CommandResult.model_json_schema()
    return documents


def write(directory: Path) -> list[Path]:
    written = []
    for name, document in schemas().items():
        path = directory / f"{name}.schema.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        written.append(path)
    return written
