"""The card's generic package names must not be claimed by another installed distribution."""

from importlib.metadata import packages_distributions

OURS = ("streams", "domain", "tables", "agents", "web", "ops")


def test_no_installed_distribution_claims_our_package_names() -> None:
    claimed = packages_distributions()
    clashes = {name: claimed[name] for name in OURS if set(claimed.get(name, [])) - {"shopstream"}}
    assert clashes == {}
