"""The exported JSON Schemas: one per message type, each pinning its wire name."""

from pathlib import Path

import orjson

from ops.schema import event_versions, write
from streams.commands import COMMANDS
from streams.events import EVENTS


def test_every_message_type_gets_a_schema_that_pins_its_type(tmp_path: Path) -> None:
    written = {path.relative_to(tmp_path).as_posix() for path in write(tmp_path)}
    assert written == ({f"commands/{n}.schema.json" for n in COMMANDS}
                       | {f"events/{n}.schema.json" for n in EVENTS}
                       | {f"events/{n}.v{v}.schema.json" for n, v in event_versions()}
                       | {"command-result.schema.json"})
    place = orjson.loads((tmp_path / "commands/PlaceOrder.schema.json").read_bytes())
    assert place["properties"]["type"]["const"] == "PlaceOrder"
    assert {"command_id", "type", "aggregate_id", "payload"} <= set(place["required"])
