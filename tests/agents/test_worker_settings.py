"""A worker under test is configured by its test: the agent tests' settings (an in-memory
store, fast retries) must not leak into the integration workers' RocksDB; only the levers a
run turns for every worker pass on."""

import os

import pytest

from tests.integration.cluster import LEVERS, outside_settings


def test_workers_under_test_inherit_no_shopstream_setting_but_the_levers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert os.environ["SHOPSTREAM_STORE"] == "memory://"
    monkeypatch.setenv("SHOPSTREAM_WHOLE_FETCHES", "off")
    inherited = [name for name in outside_settings() if name.startswith("SHOPSTREAM_")]
    assert "SHOPSTREAM_WHOLE_FETCHES" in inherited and set(inherited) <= set(LEVERS)
