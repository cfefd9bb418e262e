"""Command handlers, projectors and the saga: thin wiring around pure deciders."""
