"""`python -m streams worker`: the door to the operator's commands, which live a floor up (ops)."""

import runpy

runpy.run_module("ops", run_name="__main__")
