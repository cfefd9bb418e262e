"""A worker under test is configured by its test alone: the agent tests' settings (an
in-memory store, fast retries) must not leak into the integration workers' RocksDB."""

import os

from tests.integration.cluster import outside_settings


def test_workers_under_test_inherit_no_shopstream_setting() -> None:
    assert os.environ["SHOPSTREAM_STORE"] == "memory://"
    assert not [name for name in outside_settings() if name.startswith("SHOPSTREAM_")]
