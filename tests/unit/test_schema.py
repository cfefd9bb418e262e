"""The exported JSON Schemas: one per message type, each pinning its wire name."""

from pathlib import Path

import orjson

from ops.schema import event_versions, write
from streams.commands import COMMANDS, INTERNAL, PUBLIC
from streams.events import EVENTS


def test_every_message_type_gets_a_schema_that_pins_its_type(tmp_path: Path) -> None:
    written = {path.relative_to(tmp_path).as_posix() for path in write(tmp_path)}
    assert written == ({f"commands/public/{n}.schema.json" for n in PUBLIC}
                       | {f"commands/internal/{n}.schema.json" for n in INTERNAL}
                       | {f"events/{n}.schema.json" for n in EVENTS}
                       | {f"events/{n}.v{v}.schema.json" for n, v in event_versions()}
                       | {"command-result.schema.json"})
    place = orjson.loads((tmp_path / "commands/public/PlaceOrder.schema.json").read_bytes())
    assert place["properties"]["type"]["const"] == "PlaceOrder"
    assert {"command_id", "type", "aggregate_id", "payload"} <= set(place["required"])


def test_the_saga_commands_are_marked_internal_and_the_others_public(tmp_path: Path) -> None:
    write(tmp_path)
    marks = {path.stem.removesuffix(".schema"): orjson.loads(path.read_bytes())["x-internal"]
             for path in (tmp_path / "commands").rglob("*.schema.json")}
    assert {name for name, internal in marks.items() if internal} == {
        "ConfirmOrder", "RejectOrder", "ReserveStock", "ReleaseStock", "DispatchStock"}
    assert set(marks) == set(COMMANDS)
