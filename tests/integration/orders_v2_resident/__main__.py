"""`python -m tests.integration.orders_v2_resident worker` (or `views ...`): the service as a
deploy would run it once `tables/orders.py` says `VIEW = VIEW_V2` (v1 still declared)."""

import runpy
from types import ModuleType

from tables import orders
from tables.registry import register

_declared = ModuleType(orders.__name__)
_declared.VIEW = orders.VIEW_V2
_declared.VERSIONS = orders.VERSIONS
register(_declared)
runpy.run_module("ops", run_name="__main__")
