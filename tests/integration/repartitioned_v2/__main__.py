"""`python -m tests.integration.repartitioned_v2 worker` (or `views ...`): the service with a
v2 declared in customer-orders and sales, as a module declaring one would. Both are built
through a repartition topic of their own; sales v2 keeps one row per sku and hour."""

import runpy
from dataclasses import replace
from types import ModuleType

from tables import customer_orders, sales
from tables.registry import register

for _module in (customer_orders, sales):
    _declared = ModuleType(_module.__name__)
    _declared.VIEW = _module.VIEW
    _declared.VERSIONS = (_module.VIEW, replace(_module.VIEW, version=2))
    register(_declared)
runpy.run_module("ops", run_name="__main__")
