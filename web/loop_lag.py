"""How late the worker's event loop runs: `shopstream_event_loop_lag_seconds` in /metrics.

Everything a worker does shares one event loop: folds, commands, reads, the fetches'
hand-offs. A callback that holds it (a long batch, a full garbage collection, a C call
keeping the GIL, the process waiting for a core) delays every one of them by as long. A
timer due every INTERVAL seconds notes how late it fires; a hold past LOG_PAST is logged.
"""

import asyncio
import logging
import time

from prometheus_client import Histogram

from streams.app import app
from web.monitoring import REGISTRY

log = logging.getLogger(__name__)
INTERVAL = 0.1
LOG_PAST = 1.0
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LOOP_LAG = Histogram(
    "shopstream_event_loop_lag_seconds",
    f"How late a timer due every {INTERVAL} s fired on the worker's event loop",
    buckets=BUCKETS, registry=REGISTRY)


async def watch(histogram: Histogram, interval: float = INTERVAL) -> None:
    while True:
        due = time.monotonic() + interval
        await asyncio.sleep(interval)
        late = max(0.0, time.monotonic() - due)
        histogram.observe(late)
        if late > LOG_PAST:
            log.warning("the event loop was held for %.1f s", late)


@app.task
async def watch_event_loop() -> None:
    await watch(LOOP_LAG)
