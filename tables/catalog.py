"""Which version of each view is live, and which versions are being built or retired.

The catalog is the compacted `<prefix>.view-aliases` topic, which every worker follows
from its start: one record per view saying its live version (so a switch, or a rollback,
is one record) and one per built version saying whether it is building or retired.
"""

from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from tables.progress import Signal
from tables.registry import VERSIONS, VIEWS

State = Literal["building", "retired"]


def live_key(view: str) -> bytes:
    return f"live/{view}".encode()


def version_key(view: str, version: int) -> bytes:
    return f"version/{view}/{version}".encode()


def live_record(view: str, version: int) -> bytes:
    return orjson.dumps({"view": view, "live": version, "at": datetime.now(UTC).isoformat()})


def version_record(view: str, version: int, state: State) -> bytes:
    return orjson.dumps({"view": view, "version": version, "state": state,
                         "at": datetime.now(UTC).isoformat()})


class Catalog:
    """The catalog as this worker has read it so far."""

    def __init__(self) -> None:
        self.live: dict[str, int] = {}
        self.states: dict[tuple[str, int], State] = {}
        self.changed = Signal()
        self.loaded = False  # read up to the topic's end once

    def observe(self, value: bytes | None) -> None:
        """Take one record; a record this code cannot use (an unknown view) is skipped."""
        if not value:
            return
        try:
            record: dict[str, Any] = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        view = record.get("view")
        if view not in VERSIONS:
            return
        if isinstance(record.get("live"), int):
            self.live[view] = record["live"]
        elif isinstance(record.get("version"), int) and record.get("state") in ("building",
                                                                                 "retired"):
            self.states[view, record["version"]] = record["state"]
        self.changed.fire()

    def live_version(self, view: str) -> int:
        """The version serving reads: the switched-to one, else the resident one."""
        version = self.live.get(view, VIEWS[view].version)
        return version if version in VERSIONS[view] else VIEWS[view].version

    def state(self, view: str, version: int) -> str:
        """live, building (or built: whether it has caught up is a question of positions),
        retired, resident (folded by the event-log agent), former (older than the resident
        version and not built: folded by nothing, its topics kept until it is retired) or
        declared (never built)."""
        if self.live_version(view) == version:
            return "live"
        if VIEWS[view].version == version:
            return "resident"
        if (view, version) in self.states:
            return self.states[view, version]
        return "former" if version < VIEWS[view].version else "declared"

    def to_build(self) -> list[tuple[str, int]]:
        """The built versions every worker should keep folding: building or live ones."""
        return [(view, version) for view, versions in VERSIONS.items() for version in versions
                if VIEWS[view].version != version
                and (self.states.get((view, version)) == "building"
                     or self.live.get(view) == version)]


catalog = Catalog()
