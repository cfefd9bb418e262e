"""Consistency tokens round-trip, and anything else is refused clearly."""

from uuid import uuid4

import pytest

from streams.envelopes import CommandResult, Position
from streams.tokens import Token


def test_a_token_carries_positions_and_the_version_after_the_command() -> None:
    result = CommandResult(command_id=uuid4(), type="PayOrder", status="accepted",
                           aggregate_id="order-1", version=3,
                           positions=[Position(partition=2, offset=41)])
    token = Token.of(result)
    assert Token.decode(token.encode()) == token == Token(((2, 41),), "order-1", 3)


@pytest.mark.parametrize("text", ["", "abc", "!!!", "eyJ4IjogMX0"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not one this service issued"):
        Token.decode(text)
