"""Every Kafka client connects the same way: plain by default, SASL when configured."""

from dataclasses import replace

import pytest

from streams.kafka_clients import client_options, faust_credentials
from streams.settings import Settings

PLAIN = Settings.from_env()


def test_plaintext_by_default() -> None:
    assert client_options(PLAIN) == {"bootstrap_servers": PLAIN.bootstrap}
    assert faust_credentials(PLAIN) is None


def test_sasl_reaches_faust_and_every_plain_client() -> None:
    sasl = replace(PLAIN, kafka_security_protocol="SASL_PLAINTEXT", kafka_username="alice",
                   kafka_password="wonderland", kafka_sasl_mechanism="SCRAM-SHA-512")
    assert client_options(sasl) == {
        "bootstrap_servers": PLAIN.bootstrap, "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "alice",
        "sasl_plain_password": "wonderland"}
    credentials = faust_credentials(sasl)
    assert credentials is not None
    assert (credentials.username, credentials.mechanism.value) == ("alice", "SCRAM-SHA-512")
    assert "wonderland" not in repr(credentials)


@pytest.mark.parametrize(("name", "value"), [("KAFKA_SECURITY_PROTOCOL", "SSL"),
                                             ("KAFKA_SASL_MECHANISM", "GSSAPI")])
def test_an_unsupported_setting_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str,
                                                   value: str) -> None:
    monkeypatch.setenv(f"SHOPSTREAM_{name}", value)
    with pytest.raises(ValueError, match=f"SHOPSTREAM_{name}"):
        Settings.from_env()
