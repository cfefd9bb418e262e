"""Run the Shopstream CLI: `python -m streams worker`."""

from streams.cli import main

main()
