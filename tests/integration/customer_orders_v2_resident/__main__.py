"""`python -m tests.integration.customer_orders_v2_resident worker` (or `views ...`): the
service of `tests.integration.repartitioned_v2` as a deploy would run it once
`tables/customer_orders.py` says `VIEW = VIEW_V2` (v1 still declared)."""

import runpy
from dataclasses import replace
from types import ModuleType

from tables import customer_orders, sales
from tables.registry import register

for _module, _resident in ((customer_orders, 2), (sales, 1)):
    _versions = (_module.VIEW, replace(_module.VIEW, version=2))
    _declared = ModuleType(_module.__name__)
    _declared.VIEW = _versions[_resident - 1]
    _declared.VERSIONS = _versions
    register(_declared)
runpy.run_module("ops", run_name="__main__")
