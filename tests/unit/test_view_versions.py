"""View versions: orders v2 folds old and new events alike, and the catalog says which serves."""

from pathlib import Path
from types import ModuleType

import orjson

from streams.envelopes import parse_event
from tables import orders
from tables.catalog import Catalog, live_record, version_record
from tables.compare import field_differences
from tables.fold import fold
from tables.orders import VIEW, VIEW_V2, OrderV2
from tables.registry import VERSIONS, VIEWS, is_resident, promoted, register
from tables.view import apply

GOLDEN = Path(__file__).parent.parent / "golden" / "events"


def placed(version: int) -> bytes:
    return (GOLDEN / f"OrderPlaced.v{version}.json").read_bytes()


def test_orders_v2_shows_the_channel_of_old_and_new_events() -> None:
    old = apply(VIEW_V2, None, parse_event(placed(1)), "order-1")
    new = apply(VIEW_V2, None, parse_event(placed(2)), "order-1")
    assert old is not None and new is not None
    assert old["data"]["channel"] == "web" and new["data"]["channel"] == "mobile"
    OrderV2.model_validate(new["data"])


def test_orders_v2_differs_from_v1_only_in_the_fields_it_declares_new() -> None:
    event = parse_event(placed(2))
    v1, v2 = apply(VIEW, None, event, "order-1"), apply(VIEW_V2, None, event, "order-1")
    assert v1 is not None and v2 is not None
    assert list(field_differences("order-1", VIEW, VIEW_V2, v1["data"], v2["data"])) == []
    assert v2["data"].keys() - v1["data"].keys() == VIEW_V2.new_fields


def test_the_resident_version_is_the_first_declared_and_the_others_are_buildable() -> None:
    assert VIEWS["orders"] is VIEW and is_resident(VIEW)
    assert VERSIONS["orders"] == {1: VIEW, 2: VIEW_V2} and not is_resident(VIEW_V2)
    assert VIEW_V2.table_name == "orders-v2"


def test_the_catalog_switches_rolls_back_and_retires_by_records() -> None:
    catalog = Catalog()
    assert catalog.live_version("orders") == 1 and catalog.state("orders", 2) == "declared"
    catalog.observe(version_record("orders", 2, "building"))
    assert catalog.state("orders", 2) == "building" and catalog.to_build() == [("orders", 2)]
    catalog.observe(live_record("orders", 2))
    assert catalog.live_version("orders") == 2
    assert catalog.state("orders", 2) == "live" and catalog.state("orders", 1) == "resident"
    catalog.observe(live_record("orders", 1))
    assert catalog.live_version("orders") == 1 and catalog.state("orders", 1) == "live"
    catalog.observe(version_record("orders", 2, "retired"))
    assert catalog.state("orders", 2) == "retired" and catalog.to_build() == []


def test_a_deploy_making_v2_resident_leaves_v1_former_until_retired() -> None:
    assert not promoted(VIEW)
    deployed = ModuleType(orders.__name__)
    deployed.VIEW, deployed.VERSIONS = VIEW_V2, orders.VERSIONS
    register(deployed)
    try:
        assert promoted(VIEW_V2) and not is_resident(VIEW) and is_resident(VIEW_V2)
        catalog = Catalog()
        catalog.observe(live_record("orders", 2))
        assert catalog.state("orders", 2) == "live" and catalog.state("orders", 1) == "former"
        assert catalog.to_build() == []  # nothing folds v1 any more
        catalog.observe(version_record("orders", 1, "retired"))
        assert catalog.state("orders", 1) == "retired"
    finally:
        register(orders)
    assert VIEWS["orders"] is VIEW


def test_the_catalog_skips_what_it_cannot_use() -> None:
    catalog = Catalog()
    for value in (b"not json", b"", orjson.dumps({"view": "nope", "live": 2}),
                  orjson.dumps({"view": "orders", "live": 9})):
        catalog.observe(value)
    assert catalog.live_version("orders") == 1  # a version this code does not declare


def test_verify_folds_the_log_with_the_version_it_is_given() -> None:
    log = [parse_event(placed(1))]
    assert "channel" not in fold(log)["orders"]["order-1"]["data"]
    assert fold(log, views={"orders": VIEW_V2})["orders"]["order-1"]["data"]["channel"] == "web"
