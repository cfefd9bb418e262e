"""Consistency tokens: what a command's result hands a client so it can read its own writes.

A token names the log positions of the command's events and the aggregate version they
brought; it is opaque to clients (today: base64url of a small JSON document).
"""

import base64
import binascii
from dataclasses import dataclass

import orjson

from streams.envelopes import CommandResult


@dataclass(frozen=True)
class Token:
    positions: tuple[tuple[int, int], ...]  # (partition, offset) on the event log
    aggregate_id: str
    version: int

    def encode(self) -> str:
        document = {"p": self.positions, "a": self.aggregate_id, "v": self.version}
        return base64.urlsafe_b64encode(orjson.dumps(document)).decode().rstrip("=")

    @classmethod
    def of(cls, result: CommandResult) -> "Token":
        positions = tuple((p.partition, p.offset) for p in result.positions)
        return cls(positions, result.aggregate_id, result.version)

    @classmethod
    def decode(cls, text: str) -> "Token":
        try:
            document = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            positions = tuple((int(p), int(o)) for p, o in document["p"])
            return cls(positions, str(document["a"]), int(document["v"]))
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ValueError("token is not one this service issued") from None
