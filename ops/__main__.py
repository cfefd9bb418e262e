"""Run the Shopstream CLI: `python -m ops worker` (or `python -m streams worker`)."""

from ops.cli import main

main()
