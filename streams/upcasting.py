"""Upcasting: pure functions that turn a stored event of an older schema version into the next.

The event log is kept forever, so an event type's payload may change only by adding a new
schema version and an upcaster from the one before. Every reader of events decodes through
`upcast` (see `streams.envelopes.parse_event`), so state, views, the saga and `verify` all
see the current model, whatever version was written.

Rules, in order:
- `schema_version` absent means 1 (the only version before versions were counted).
- A version newer than this code knows is refused with a message naming it: the record is
  parked on the dead-letter topic, and replayed once the code that knows it is deployed.
- An unknown field in a known version is refused too (the payload models forbid extras): a
  producer that adds a field must publish a new version, or the field would be lost silently.
"""

from collections.abc import Callable
from typing import Any

Raw = dict[str, Any]
Upcaster = Callable[[Raw], Raw]


def _order_placed_v1_to_v2(payload: Raw) -> Raw:
    """v2 records the sales channel; every order placed before it came through the web."""
    return {**payload, "channel": "web"}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("OrderPlaced", 1): _order_placed_v1_to_v2,
}
"""(event type, version) -> the payload at version + 1."""


def current_version(event_type: str) -> int:
    """The schema version this code writes and reads for an event type."""
    version = 1
    while (event_type, version) in UPCASTERS:
        version += 1
    return version


class TooNew(ValueError):
    """An event written by code newer than this."""


def upcast(envelope: Raw) -> Raw:
    """The raw envelope at its type's current version; payloads at older versions are
    upcast step by step. Raises TooNew for a version past the current one."""
    event_type = envelope.get("type")
    version = envelope.get("schema_version", 1)
    if not isinstance(event_type, str) or not isinstance(version, int) or version < 1:
        return envelope  # the envelope model reports what is wrong with these fields
    current = current_version(event_type)
    if version > current:
        raise TooNew(f"{event_type} schema_version {version} is newer than this code knows "
                     f"(up to {current}); deploy code that knows it, then replay the dead "
                     f"letter")
    payload = envelope.get("payload")
    if version == current or not isinstance(payload, dict):
        return {**envelope, "schema_version": version}
    while version < current:
        payload = UPCASTERS[event_type, version](payload)
        version += 1
    return {**envelope, "schema_version": version, "payload": payload}
