"""Envelopes decoded in one call to pydantic-core when they are in their type's current shape.

`Command` and `Event` pick their payload's class by `type` in a Python validator, and `Event`
upcasts older schema versions in another, so pydantic turns every message into Python objects
and validates them again, the payload in Python mode; `Money` adds four Python checks of its
own. The validator built here is a union tagged by `type` of one model schema per type, each
making the envelope's own class with the payload's own schema in place and the fields
`pinned` names (`schema_version`) taken only at the type's current value, so a message in
that shape is validated straight from the JSON, in Rust. Money in it is taken only as the
canonical decimal string of `MONEY_PATTERN`: every such string passes `Money`'s checks, and
parses to the same `Decimal`. What this validator refuses, the caller decodes through the
models, so upcasting and every error message stay theirs.
"""

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import CoreSchema, SchemaValidator
from pydantic_core import core_schema as cs

from streams.commands import MONEY_PATTERN, Money


def _signature(node: Any) -> Any:
    """A schema node as comparable data (a `partial` compares by identity, its parts do not)."""
    if isinstance(node, dict):
        return tuple(sorted((key, _signature(value)) for key, value in node.items()
                            if key != "metadata"))
    if isinstance(node, list | tuple):
        return tuple(_signature(item) for item in node)
    if isinstance(node, partial):
        return node.func, node.args, tuple(sorted(node.keywords.items()))
    return node


MONEY = _signature(TypeAdapter(Money).core_schema)
CANONICAL_MONEY = cs.chain_schema([cs.str_schema(pattern=MONEY_PATTERN), cs.decimal_schema()])


def _canonical_money(node: Any) -> Any:
    """`node` with every `Money` schema in it replaced by `CANONICAL_MONEY`."""
    if isinstance(node, dict):
        if _signature(node) == MONEY:
            return CANONICAL_MONEY
        return {key: _canonical_money(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_canonical_money(item) for item in node]
    return node


def _model_and_fields(envelope: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The envelope's model schema, and its fields' schemas beneath any model validator."""
    model: dict[str, Any] = dict(envelope.__pydantic_core_schema__)
    if model["type"] == "definitions":
        model = model["schema"]
    inner = model["schema"]
    while inner["type"] != "model-fields":
        inner = inner["schema"]
    return model, inner["fields"]


Pins = Callable[[str], Mapping[str, Any]]


def current_shapes(envelope: type[BaseModel], payloads: Mapping[str, type[BaseModel]],
                   pinned: Pins = lambda _: {}) -> SchemaValidator:
    """A validator of `envelope`s of every type in `payloads`, in the shape described above;
    `pinned(type)` maps fields to the one value each takes for that type."""
    return _built_afresh(shape(envelope, payloads, pinned))


def shape(envelope: type[BaseModel], payloads: Mapping[str, type[BaseModel]],
          pinned: Pins = lambda _: {}) -> CoreSchema:
    model, fields = _model_and_fields(envelope)
    choices: dict[str, CoreSchema] = {}
    for name, payload in payloads.items():
        narrowed = {"type": cs.literal_schema([name]),
                    "payload": _canonical_money(payload.__pydantic_core_schema__)}
        narrowed |= {field: cs.literal_schema([value]) for field, value in pinned(name).items()}
        shape: dict[str, Any] = {field: {**schema, "schema": narrowed.get(field, schema["schema"])}
                                 for field, schema in fields.items()}
        choices[name] = cs.model_schema(
            envelope, cs.model_fields_schema(shape, model_name=envelope.__name__),
            config=model["config"])
    return cs.tagged_union_schema(choices, discriminator="type")


def _models(node: Any) -> set[type]:
    if isinstance(node, dict):
        found = {node["cls"]} if node.get("type") == "model" else set()
        return found.union(*(_models(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_models(item) for item in node))
    return set()


def _built_afresh(schema: CoreSchema) -> SchemaValidator:
    """A validator built from `schema` as written. For the model schema of a class whose
    `__pydantic_complete__` is true, pydantic-core reuses the class's own validator (its model
    validators, its `Money` checks), so every class in it is marked incomplete while it builds.
    `tests/unit/test_decoding.py` fails if that stops being how pydantic-core decides."""
    classes = {cls: cls.__dict__.get("__pydantic_complete__") for cls in _models(schema)}
    for cls in classes:
        cls.__pydantic_complete__ = False  # type: ignore[attr-defined]
    try:
        return SchemaValidator(schema)
    finally:
        for cls, complete in classes.items():
            cls.__pydantic_complete__ = complete  # type: ignore[attr-defined]
