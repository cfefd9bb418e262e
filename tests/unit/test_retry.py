"""Bounded exponential backoff: transient broker failures are retried, others are not."""

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, UnknownTopicOrPartitionError
from hypothesis import given
from hypothesis import strategies as st

from agents.retry import Backoff, GaveUp, is_transient, retrying

FAST = Backoff(attempts=4, base=0.001, cap=0.004)


@given(st.integers(1, 20), st.floats(0.001, 2), st.floats(0.001, 30))
def test_pauses_double_up_to_the_cap_one_fewer_than_the_attempts(
    attempts: int, base: float, cap: float,
) -> None:
    delays = list(Backoff(attempts, base, cap).delays())
    assert len(delays) == attempts - 1
    for retry, delay in enumerate(delays):
        ceiling = min(cap, base * 2**retry)
        assert ceiling / 2 <= delay <= ceiling


def test_broker_unavailability_and_timeouts_are_transient_a_bad_request_is_not() -> None:
    assert is_transient(KafkaConnectionError())
    assert is_transient(KafkaTimeoutError())
    assert is_transient(TimeoutError())
    assert is_transient(UnknownTopicOrPartitionError())
    assert not is_transient(ValueError("bad payload"))


async def test_a_transient_failure_is_retried_until_it_passes() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise KafkaConnectionError("broker down")
        return "sent"

    assert await retrying("send", flaky, FAST) == "sent"
    assert len(calls) == 3


async def test_retries_are_bounded_and_report_the_attempts() -> None:
    calls = []

    async def down() -> None:
        calls.append(1)
        raise KafkaTimeoutError()

    with pytest.raises(GaveUp) as gave_up:
        await retrying("send", down, FAST)
    assert len(calls) == gave_up.value.attempts == 4
    assert isinstance(gave_up.value.cause, KafkaTimeoutError)


async def test_anything_else_fails_at_once() -> None:
    calls = []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await retrying("send", broken, FAST)
    assert len(calls) == 1
