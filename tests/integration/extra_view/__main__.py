"""`python -m tests.integration.extra_view worker`: the worker, with the throwaway view in the
registry before anything reads it (the one line a new view adds to tables/registry.py)."""

import runpy

from tables.registry import register
from tests.integration.extra_view import order_lines

register(order_lines)
runpy.run_module("ops", run_name="__main__")
