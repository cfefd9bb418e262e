"""Failover settings: a short session by default, and a static group membership id that is
unique per worker, the same after a restart, and legal for Kafka."""

import re

import pytest

from streams.settings import Settings, instance_id


def test_the_instance_id_comes_from_the_advertised_url_in_kafkas_legal_characters() -> None:
    assert instance_id("", "http://10.0.0.7:6066", "true") == "10.0.0.7-6066"
    assert re.fullmatch(r"[a-zA-Z0-9._-]+",
                        instance_id("", "https://shop.example/a b?c", "true") or "")


def test_an_instance_id_given_wins_and_static_membership_can_be_turned_off() -> None:
    assert instance_id("worker-a", "http://127.0.0.1:6066", "true") == "worker-a"
    assert instance_id("worker-a", "http://127.0.0.1:6066", "false") is None


def test_failover_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SESSION_TIMEOUT", "HEARTBEAT_INTERVAL", "STANDBY_REPLICAS", "WEB_PORT",
                 "ADVERTISED_URL", "INSTANCE_ID", "STATIC_MEMBERSHIP"):
        monkeypatch.delenv(f"SHOPSTREAM_{name}", raising=False)
    settings = Settings.from_env()
    assert settings.session_timeout == 20.0 and settings.heartbeat_interval == 1.0
    assert settings.standby_replicas == 1
    assert settings.instance_id == "127.0.0.1-6066"


def test_failover_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_SESSION_TIMEOUT", "6")
    monkeypatch.setenv("SHOPSTREAM_STATIC_MEMBERSHIP", "off")
    settings = Settings.from_env()
    assert settings.session_timeout == 6.0 and settings.instance_id is None
