"""How every Kafka client of the project connects: Faust's credentials and the keyword
arguments of each plain aiokafka client, from the SHOPSTREAM_KAFKA_* settings."""

from typing import Any

import faust
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

from streams.settings import Settings

CHECK_TIMEOUT_MS = 10_000


class BrokerAuthenticationFailed(RuntimeError):
    """The broker refused our credentials: retrying cannot help."""


def faust_credentials(settings: Settings) -> faust.SASLCredentials | None:
    if not settings.sasl:
        return None
    return faust.SASLCredentials(username=settings.kafka_username,
                                 password=settings.kafka_password,
                                 mechanism=settings.kafka_sasl_mechanism)


def client_options(settings: Settings) -> dict[str, Any]:
    """The connection keyword arguments of an AIOKafkaConsumer, Producer or AdminClient."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap}
    if settings.sasl:
        options |= {"security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": settings.kafka_sasl_mechanism,
                    "sasl_plain_username": settings.kafka_username,
                    "sasl_plain_password": settings.kafka_password}
    return options


async def check_credentials(settings: Settings) -> None:
    """Connect once and raise BrokerAuthenticationFailed if the broker refuses the
    credentials (Kafka clients would otherwise log it and retry for ever); a broker that
    cannot be reached is left to the clients' own retries."""
    if not settings.sasl:
        return
    options = client_options(settings)
    del options["bootstrap_servers"]
    for address in settings.bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            connection = await create_conn(host, int(port), request_timeout_ms=CHECK_TIMEOUT_MS,
                                           **options)
        except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as exc:
            raise BrokerAuthenticationFailed(
                f"Kafka authentication failed for user {settings.kafka_username!r} with "
                f"{settings.kafka_sasl_mechanism} at {address}: {exc}") from None
        except (OSError, KafkaError, TimeoutError):
            continue
        connection.close()
        return
