"""`python -m bench.rebuild_worker worker`: the service with a products v2 declared (the same
fold under a new version number), which `bench.rebuild` builds beside the live v1."""

import runpy
import sys
from dataclasses import replace

from tables import products
from tables.registry import register

VIEW = products.VIEW
VERSIONS = (VIEW, replace(VIEW, version=2))

register(sys.modules[__name__])
runpy.run_module("ops", run_name="__main__")
