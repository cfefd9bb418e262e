"""The one-call decoders (`streams.decoding`) give exactly what the models give, or refuse and
leave the message to them: same objects, same upcasting, same errors."""

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import SchemaValidator

from streams.commands import COMMANDS, MONEY_PATTERN, Money
from streams.decoding import CANONICAL_MONEY, shape
from streams.envelopes import (
    COMMANDS_NOW,
    EVENTS_NOW,
    Command,
    Event,
    parse_command,
    parse_event,
)
from streams.events import EVENTS
from streams.upcasting import current_version

GOLDEN = Path(__file__).parent.parent / "golden" / "events"
CORPUS = sorted(GOLDEN.glob("*.v*.json"))


def anatomy(value: Any) -> Any:
    """Everything that tells two decoded values apart: classes, which fields were given, and
    each value's type and repr (a Decimal's exponent, a datetime's zone)."""
    if isinstance(value, BaseModel):
        return (type(value), sorted(value.model_fields_set), value.__pydantic_extra__,
                {name: anatomy(item) for name, item in value.__dict__.items()})
    if isinstance(value, list):
        return [anatomy(item) for item in value]
    return type(value), repr(value)


def outcome(parse: Any, raw: bytes) -> Any:
    try:
        return anatomy(parse(raw))
    except Exception as exc:  # the models may raise more than ValidationError: so must we
        return type(exc), str(exc)


def is_current(raw: bytes) -> bool:
    stored = orjson.loads(raw)
    return bool(stored["schema_version"] == current_version(stored["type"]))


@pytest.mark.parametrize("path", CORPUS, ids=[path.stem for path in CORPUS])
def test_every_golden_event_decodes_as_the_model_decodes_it(path: Path) -> None:
    raw = path.read_bytes()
    assert outcome(parse_event, raw) == outcome(Event.model_validate_json, raw)
    if is_current(raw):
        assert anatomy(EVENTS_NOW.validate_json(raw)) == anatomy(Event.model_validate_json(raw))
    else:  # the one-call path refuses it: the model upcasts it
        with pytest.raises(ValidationError):
            EVENTS_NOW.validate_json(raw)


def test_the_one_call_path_runs_no_python_validator() -> None:
    """Not the model's validator reused (pydantic-core does that for a complete model class;
    `streams.decoding._built_afresh`), nor Money's checks: what it refuses proves it."""
    placed_v1 = (GOLDEN / "OrderPlaced.v1.json").read_bytes()
    with pytest.raises(ValidationError, match="schema_version"):
        EVENTS_NOW.validate_json(placed_v1)
    changed = orjson.loads((GOLDEN / "PriceChanged.v1.json").read_bytes())
    changed["payload"]["price"] = "1.500"  # Money takes it; its canonical form is "1.50"
    with pytest.raises(ValidationError, match="pattern"):
        EVENTS_NOW.validate_json(orjson.dumps(changed))
    assert parse_event(orjson.dumps(changed)).payload.price == Decimal("1.500")  # type: ignore[attr-defined]

    def functions(node: Any) -> list[str]:
        if isinstance(node, dict):
            here = [node["type"]] if str(node.get("type")).startswith("function") else []
            return here + [f for value in node.values() for f in functions(value)]
        if isinstance(node, list):
            return [f for item in node for f in functions(item)]
        return []

    assert functions(shape(Event, EVENTS, lambda name: {"schema_version": 1})) == []
    assert functions(shape(Command, COMMANDS)) == []


@pytest.mark.parametrize(("once", "twice"), [
    (b'"type": "StockAdded"', b'"type": "PriceChanged", "type": "StockAdded"'),
    (b'"type": "StockAdded"', b'"type": "StockAdded", "type": "PriceChanged"'),
    (b'"schema_version": 1', b'"schema_version": 5, "schema_version": 1'),
    (b'"schema_version": 1', b'"schema_version": 1, "schema_version": 5'),
    (b'"quantity": 5', b'"quantity": -1, "quantity": 5'),
    (b'"quantity": 5', b'"quantity": 5, "quantity": -1'),
])
def test_a_key_given_twice_counts_as_the_model_counts_it(once: bytes, twice: bytes) -> None:
    stored = (GOLDEN / "StockAdded.v1.json").read_bytes()
    raw = stored.replace(once, twice)
    assert raw != stored
    assert outcome(parse_event, raw) == outcome(Event.model_validate_json, raw)


money_like = st.one_of(
    st.from_regex(MONEY_PATTERN, fullmatch=True),
    st.text(st.sampled_from("0123456789.-+eE_ \u0661"), max_size=22),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["0", "0.00", "00.5", "1.", ".5", "1E+1000000", "9" * 17, "9" * 16 + ".99",
                     "1e2", "1.500", "-1.50", "+1.50", "\u0661.5", "1_0", " 1.50", "NaN"]),
)


@settings(max_examples=500)
@given(text=money_like)
def test_canonical_money_is_money_with_the_same_decimal(text: str) -> None:
    raw = json.dumps(text)
    try:
        canonical = SchemaValidator(CANONICAL_MONEY).validate_json(raw)
    except ValidationError:
        return
    decoded = TypeAdapter(Money).validate_json(raw)
    assert (type(decoded), repr(decoded)) == (type(canonical), repr(canonical))


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6), st.uuids().map(str), st.datetimes().map(datetime.isoformat),
)
arbitrary = st.one_of(scalars, st.lists(scalars, max_size=2),
                      st.dictionaries(st.text(max_size=4), scalars, max_size=2))
counts = st.one_of(st.integers(-1, 3), st.integers(0, 10**9 + 1),
                   st.sampled_from([10**9, 10**9 + 1, 5.0, 2.5, "5", " 5", True]))
texts = st.one_of(st.text(max_size=8), st.sampled_from(
    ["web", "mobile", "Web", "a-1", "", "x" * 200, "x" * 201, "y" * 1001]))
lines = st.lists(st.fixed_dictionaries({"sku": texts, "quantity": counts},
                                       optional={"unit_price": money_like, "note": scalars}),
                 max_size=3)
times = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat),
    st.integers(-1, 2 * 10**9),
    st.sampled_from(["2026-01-15", "2026-01-15T10:30:00+01:00", "2026-01-15 10:30:00Z",
                     "2026-01-15T10:30:00.1234567Z"]),
)
ids = st.one_of(st.uuids().map(str), st.sampled_from(
    ["not-a-uuid", "0b6f9a3c2d414e8a9c571f3e5a7b9d20", "{0b6f9a3c-2d41-4e8a-9c57-1f3e5a7b9d20}"]))
kinds = st.sampled_from([*EVENTS, *COMMANDS, "Unknown"])  # of events, commands, neither
versions = st.sampled_from([1, 2, 3, 0, True, 1.0, 2.0, "1", "2"])
PLAUSIBLE = {
    **dict.fromkeys(["price", "unit_price", "total", "amount"], money_like),
    **dict.fromkeys(["quantity", "stock", "available", "version", "expected_version"], counts),
    **dict.fromkeys(["event_id", "command_id", "correlation_id"], ids),
    **dict.fromkeys(["occurred_at", "issued_at"], times),
    "lines": lines, "schema_version": versions, "type": kinds,
}
DROP = object()


def edits(fields: list[str]) -> st.SearchStrategy[tuple[str, Any]]:
    """A field and what it becomes: mostly a value of its kind, sometimes anything, or dropped."""
    def becomes(field: str) -> st.SearchStrategy[Any]:
        plausible = PLAUSIBLE.get(field, texts)
        return st.one_of(plausible, plausible, plausible, st.just(DROP), arbitrary)

    return st.sampled_from(fields).flatmap(lambda field: st.tuples(st.just(field),
                                                                   becomes(field)))


def mutated(template: dict[str, Any], envelope: type[BaseModel]) -> st.SearchStrategy[bytes]:
    """The template with a few envelope and payload fields set to other values or dropped."""
    payload = {**EVENTS, **COMMANDS}.get(template["type"])
    payload_fields = [*(payload.model_fields if payload else []), "gift_wrap"]
    edit = st.one_of(st.tuples(st.just(False), edits([*envelope.model_fields, "extra"])),
                     st.tuples(st.just(True), edits(payload_fields)))

    def apply(changes: list[tuple[bool, tuple[str, Any]]]) -> bytes:
        message = {**template, "payload": dict(template["payload"])}
        for in_payload, (key, value) in changes:
            target = message.get("payload") if in_payload else message
            if not isinstance(target, dict):
                continue
            if value is DROP:
                target.pop(key, None)
            else:
                target[key] = value
        return json.dumps(message).encode()

    return st.lists(edit, max_size=2).map(apply)


templates = [orjson.loads(path.read_bytes()) for path in CORPUS]


@st.composite
def events(draw: st.DrawFn) -> bytes:
    template = dict(draw(st.sampled_from(templates)))
    return draw(mutated(template, Event))


@settings(max_examples=1500)
@given(raw=events())
def test_a_generated_event_decodes_as_the_model_decodes_it(raw: bytes) -> None:
    assert outcome(parse_event, raw) == outcome(Event.model_validate_json, raw)
    try:
        fast = EVENTS_NOW.validate_json(raw)
    except ValidationError:
        return
    assert anatomy(fast) == anatomy(Event.model_validate_json(raw))


command_templates = [
    {"command_id": "0b6f9a3c-2d41-4e8a-9c57-1f3e5a7b9d20", "type": kind,
     "aggregate_id": "agg-1", "issued_at": "2026-01-15T10:30:00Z", "payload": payload}
    for kind, payload in [
        ("RegisterProduct", {"name": "Mug", "price": "4.50", "stock": 10}),
        ("ChangePrice", {"price": "0.99"}), ("Restock", {"quantity": 3}),
        ("ReserveStock", {"order_id": "o-1", "quantity": 2}),
        ("PlaceOrder", {"customer_id": "c-1", "lines": [{"sku": "s-1", "quantity": 2}]}),
        ("ConfirmOrder", {"lines": [{"sku": "s-1", "quantity": 2, "unit_price": "4.50"}],
                          "total": "9.00"}),
        ("PayOrder", {"amount": "9.00"}), ("ShipOrder", {}), ("CancelOrder", {"reason": "x"}),
    ]
]


@st.composite
def commands(draw: st.DrawFn) -> bytes:
    return draw(mutated(draw(st.sampled_from(command_templates)), Command))


def unstamped(found: Any) -> Any:
    """A decoded command's anatomy without `issued_at` when it was not given: its default is
    the time of the parse."""
    if isinstance(found, tuple) and len(found) == 4 and "issued_at" not in found[1]:
        fields = dict(found[3])
        assert fields.pop("issued_at")[0] is datetime
        return (*found[:3], fields)
    return found


@settings(max_examples=1000)
@given(raw=commands())
def test_a_generated_command_decodes_as_the_model_decodes_it(raw: bytes) -> None:
    assert unstamped(outcome(parse_command, raw)) == unstamped(
        outcome(Command.model_validate_json, raw))
    try:
        fast = COMMANDS_NOW.validate_json(raw)
    except ValidationError:
        return
    assert unstamped(anatomy(fast)) == unstamped(anatomy(Command.model_validate_json(raw)))
