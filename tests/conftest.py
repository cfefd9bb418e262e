"""Hypothesis without its per-example deadline: a time limit is a timed assertion, and on a
loaded machine it failed property tests whose properties held."""

from hypothesis import settings

settings.register_profile("shopstream", deadline=None)
settings.load_profile("shopstream")
