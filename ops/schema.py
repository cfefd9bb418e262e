"""`schema`: the JSON Schema of every command, event and result, for producers in any language."""

from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, create_model

from streams.commands import COMMANDS, Message
from streams.envelopes import Command, CommandResult, Event
from streams.events import EVENTS


def _typed(base: type[BaseModel], name: str, payload: type[Message]) -> type[BaseModel]:
    return create_model(name, __base__=base, type=(Literal[name], ...), payload=(payload, ...))


def schemas() -> dict[str, dict[str, Any]]:
    documents = {f"commands/{name}": _typed(Command, name, payload).model_json_schema()
                 for name, payload in COMMANDS.items()}
    documents |= {f"events/{name}": _typed(Event, name, payload).model_json_schema()
                  for name, payload in EVENTS.items()}
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
