"""Events evolve: every stored schema version decodes to the current model, forever."""

import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.order import decide
from ops.schema import event_versions, schemas
from streams import commands as c
from streams import events as e
from streams.envelopes import Command, encode, parse_event, stamp, utc_now
from streams.events import EVENTS
from streams.upcasting import UPCASTERS, current_version, upcast

GOLDEN = Path(__file__).parent.parent / "golden" / "events"
CORPUS = sorted(GOLDEN.glob("*.v*.json"))


def golden(kind: str, version: int) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((GOLDEN / f"{kind}.v{version}.json").read_bytes())
    return loaded


def test_the_corpus_holds_every_event_type_at_every_version_ever_emitted() -> None:
    stored = {(m[1], int(m[2])) for path in CORPUS
              if (m := re.fullmatch(r"(\w+)\.v(\d+)\.json", path.name))}
    assert stored == set(event_versions())
    assert {kind for kind, _ in stored} == set(EVENTS)


@pytest.mark.parametrize("path", CORPUS, ids=[path.stem for path in CORPUS])
def test_every_golden_event_decodes_through_the_chain_to_the_current_model(path: Path) -> None:
    raw = path.read_bytes()
    stored = orjson.loads(raw)
    event_versions()[stored["type"], stored["schema_version"]].model_validate(stored["payload"])
    event = parse_event(raw)
    assert event.schema_version == current_version(event.type)
    assert isinstance(event.payload, EVENTS[event.type])
    assert parse_event(encode(event)) == event  # what the current code writes reads back


def test_an_order_placed_before_channels_came_through_the_web() -> None:
    event = parse_event(orjson.dumps(golden("OrderPlaced", 1)))
    assert event.schema_version == 2
    assert event.payload == e.OrderPlaced(channel="web", customer_id="cust-1",
                                          lines=[c.OrderLine(sku="sku-1", quantity=2)])


def test_an_event_without_a_schema_version_is_version_1() -> None:
    stored = golden("OrderPlaced", 1)
    del stored["schema_version"]
    assert parse_event(orjson.dumps(stored)).payload.channel == "web"  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_an_event_of_any_type_without_a_schema_version_reads_as_version_1(kind: str) -> None:
    stored = golden(kind, 1)
    del stored["schema_version"]
    event = parse_event(orjson.dumps(stored))
    assert (event.type, event.schema_version) == (kind, current_version(kind))


def test_a_version_newer_than_the_code_is_refused_naming_the_version() -> None:
    stored = {**golden("OrderPlaced", 2), "schema_version": 3}
    with pytest.raises(ValidationError, match="OrderPlaced schema_version 3 is newer than "
                                              r"this code knows \(up to 2\)"):
        parse_event(orjson.dumps(stored))


def test_an_unknown_field_in_a_known_version_is_refused() -> None:
    stored = golden("OrderPlaced", 2)
    stored["payload"]["gift_wrap"] = True
    with pytest.raises(ValidationError, match="gift_wrap"):
        parse_event(orjson.dumps(stored))


def test_a_v1_order_placed_carrying_a_channel_is_refused_as_an_unknown_field() -> None:
    stored = golden("OrderPlaced", 1)
    stored["payload"]["channel"] = "web"
    with pytest.raises(ValidationError):
        event_versions()["OrderPlaced", 1].model_validate(stored["payload"])


def test_the_decider_writes_the_current_version_with_the_commands_channel() -> None:
    place = Command(command_id=uuid4(), type="PlaceOrder", aggregate_id="order-9",
                    payload=c.PlaceOrder(customer_id="cust-1", channel="mobile",
                                         lines=[c.OrderLine(sku="s", quantity=1)]))
    [event] = stamp(place, 0, decide(None, place.payload), utc_now())
    stored = orjson.loads(encode(event))
    assert stored["schema_version"] == 2 and stored["payload"]["channel"] == "mobile"


def test_a_command_without_a_channel_places_a_web_order() -> None:
    assert c.PlaceOrder(customer_id="c", lines=[c.OrderLine(sku="s", quantity=1)]).channel == "web"


def test_every_version_has_a_published_schema_pinning_it() -> None:
    documents = schemas()
    for kind, version in event_versions():
        pinned = documents[f"events/{kind}.v{version}"]["properties"]["schema_version"]
        assert pinned["const"] == version
    assert "channel" in documents["events/OrderPlaced.v2"]["$defs"]["OrderPlaced"]["properties"]
    assert "channel" not in documents["events/OrderPlaced.v1"]["$defs"]["OrderPlacedV1"][
        "properties"]


def test_every_upcaster_step_is_followed_by_a_model() -> None:
    for kind, version in UPCASTERS:
        assert (kind, version) in event_versions() and (kind, version + 1) in event_versions()


names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
v1_order_placed = st.fixed_dictionaries({
    "customer_id": names,
    "lines": st.lists(st.fixed_dictionaries({"sku": names,
                                             "quantity": st.integers(1, 10**9)}),
                      min_size=1, max_size=5),
})


@given(payload=v1_order_placed)
def test_upcasting_keeps_every_v1_field_and_adds_only_the_default(payload: dict[str, Any]) -> None:
    envelope = {**golden("OrderPlaced", 1), "payload": payload}
    upcast_once = upcast(envelope)
    assert upcast_once["payload"] == {**payload, "channel": "web"}
    assert upcast(upcast_once) == upcast_once  # the current version passes through unchanged
    assert parse_event(orjson.dumps(envelope)).payload.model_dump(mode="json") == {
        **payload, "channel": "web"}
