"""What cannot be built, switched to or retired is refused before anything is written, with
the reason: the resident version."""

import asyncio
from dataclasses import replace

import pytest

from agents.view_admin import Refused, rebuild, retire, why_not_built
from tables import customer_orders, orders, sales


def test_a_version_keyed_by_aggregate_repartitioned_or_windowed_can_be_built() -> None:
    assert why_not_built(orders.VIEW_V2) is None
    assert why_not_built(replace(customer_orders.VIEW, version=2)) is None
    assert why_not_built(replace(sales.VIEW, version=2)) is None


def test_the_resident_version_is_neither_built_nor_retired() -> None:
    with pytest.raises(Refused, match="orders-v1 is the resident version: the workers' "
                                      "event-log agent folds it all along"):
        asyncio.run(rebuild(orders.VIEW))
    with pytest.raises(Refused, match="orders-v1 is the resident version: its Faust tables "
                                      "are made when a worker starts"):
        asyncio.run(retire(orders.VIEW))
