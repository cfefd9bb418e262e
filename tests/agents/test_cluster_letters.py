"""The console's dead letters say where a record came from and why, never what it held."""

from pydantic import ValidationError

from streams.dead_letters import dead_letter
from streams.envelopes import parse_command
from web.cluster import letter_summary


def unreadable(body: bytes) -> str:
    try:
        parse_command(body)
    except ValidationError as exc:
        return f"unreadable command: {exc}"
    raise AssertionError("the body parsed")


def test_a_dead_letter_shows_its_origin_and_error_without_its_body() -> None:
    body = b'{"type": "PlaceOrder", "card": "4111-1111-1111-1111, input_type=x"}'
    letter = dead_letter("shop.commands", 2, 17, b"secret-key", body, unreadable(body))
    assert "4111" in letter.error  # pydantic quotes the input...
    shown = letter_summary(letter)
    assert "4111" not in str(shown) and "secret-key" not in str(shown)  # ...the console does not
    assert "input_value=(hidden)" in shown["error"] and "Field required" in shown["error"]
    assert (shown["source_topic"], shown["source_partition"], shown["source_offset"]) == (
        "shop.commands", 2, 17)


def test_garbage_bytes_are_hidden_too() -> None:
    letter = dead_letter("shop.commands", 0, 1, None, b"\xff\xfe", unreadable(b"\xff\xfe"))
    assert "xff" not in letter_summary(letter)["error"]
