"""The event loop's lag: a callback that holds the loop shows in the histogram."""

import asyncio
import time
from contextlib import suppress

from prometheus_client import CollectorRegistry, Histogram

from web.loop_lag import BUCKETS, watch


async def test_a_callback_that_holds_the_loop_is_counted_as_late_by_as_long() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=registry)

    def count(le: str) -> float:
        value = registry.get_sample_value("lag_seconds_bucket", {"le": le})
        assert value is not None
        return value

    watching = asyncio.create_task(watch(histogram, interval=0.01))
    asyncio.get_running_loop().call_soon(time.sleep, 0.3)  # runs after the watch's first step
    try:
        async with asyncio.timeout(10):
            while count("0.25") == count("+Inf"):  # noqa: ASYNC110  (until a late wake-up)
                await asyncio.sleep(0.01)
    finally:
        watching.cancel()
        with suppress(asyncio.CancelledError):
            await watching
