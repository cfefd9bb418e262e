"""Commands from HTTP requests in one turn of the event loop: one producer batch per
partition, each request answered by its own batch's acknowledgement or failure."""

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from agents import submissions


class Sends:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []
        self.batches: list[asyncio.Future[Any]] = []

    async def send_whole(self, topic: str, partition: int,
                         records: list[tuple[bytes, bytes]]) -> list[tuple[Any, int]]:
        self.calls.append((topic, partition, list(records)))
        batches = []
        for start in range(0, len(records), 2):  # two records a producer batch
            batch: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.batches.append(batch)
            batches.append((batch, len(records[start:start + 2])))
        return batches


async def turns(count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Sends:
    sends = Sends()
    monkeypatch.setattr(submissions, "producer", lambda: sends)
    return sends


async def test_concurrent_commands_go_as_one_send_per_partition_each_answered_by_its_batch(
    sends: Sends,
) -> None:
    requests = [asyncio.ensure_future(submissions.submit(f"k{n}".encode(), f"v{n}".encode(),
                                                         n % 2)) for n in range(5)]
    await turns()
    assert sends.calls == [
        (submissions.TOPIC, 0, [(b"k0", b"v0"), (b"k2", b"v2"), (b"k4", b"v4")]),
        (submissions.TOPIC, 1, [(b"k1", b"v1"), (b"k3", b"v3")])]
    first, second, odd = sends.batches
    first.set_result(None)
    await turns()
    assert [request.done() for request in requests] == [True, False, True, False, False]
    second.set_exception(KafkaTimeoutError())
    odd.set_result(None)
    await turns()
    assert requests[1].result() is None and requests[3].result() is None
    with pytest.raises(KafkaTimeoutError):
        await requests[4]


async def test_a_request_gone_before_the_ack_leaves_the_others_answered(sends: Sends) -> None:
    gone = asyncio.ensure_future(submissions.submit(b"a", b"1", 0))
    kept = asyncio.ensure_future(submissions.submit(b"b", b"2", 0))
    await turns()
    gone.cancel()
    sends.batches[0].set_result(None)
    assert await kept is None
    assert gone.cancelled()


async def test_a_send_that_cannot_start_fails_every_request_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Closed:
        async def send_whole(self, *args: Any) -> list[tuple[Any, int]]:
            raise KafkaTimeoutError()

    monkeypatch.setattr(submissions, "producer", Closed)
    requests = [submissions.submit(b"k", b"v", 0), submissions.submit(b"k", b"w", 0)]
    for outcome in await asyncio.gather(*requests, return_exceptions=True):
        assert isinstance(outcome, KafkaTimeoutError)
