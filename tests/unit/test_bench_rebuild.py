"""Phase r's reader and pauser (bench/rebuild.py): reads from a process of its own, so that a
busy bench process does not time them late, split by whether the build process was running
or stopped."""

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import psutil
import pytest
from aiohttp import web

from bench.rebuild import RUNS_FOR, SETTLE, LiveReader, Pauser, read_apart

WAIT = 30.0  # seconds, for a loaded machine; each wait ends as soon as its condition holds


class Asked(list[str]):
    """The skus a server was asked for, in order, and a wait for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.more = asyncio.Event()

    def add(self, sku: str) -> None:
        self.append(sku)
        self.more.set()

    async def at_least(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self) < count:
                self.more.clear()
                await self.more.wait()


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Asked]]:
    """A view endpoint on 127.0.0.1 that answers 404 for `sku-missing`; the skus asked."""
    asked = Asked()

    async def row(request: web.Request) -> web.Response:
        asked.add(request.match_info["sku"])
        if request.match_info["sku"] == "sku-missing":
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response({"sku": request.match_info["sku"]})

    app = web.Application()
    app.router.add_get("/views/products/{sku}", row)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", asked
    finally:
        await runner.cleanup()


async def test_a_counted_read_times_every_answer_and_counts_the_failed(
        server: tuple[str, Asked]) -> None:
    url, asked = server
    took, failed = await read_apart(url, ["sku-1", "sku-2", "sku-missing"], 30)
    assert len(took) + failed == 30 == len(asked)
    assert failed == asked.count("sku-missing") > 0
    assert all(0 < seconds < 5 for _, seconds in took)
    starts = [began for began, _ in took]
    assert starts == sorted(starts)


async def test_a_reader_without_a_count_reads_in_its_own_process_until_stopped(
        server: tuple[str, Asked]) -> None:
    url, asked = server
    reader = LiveReader(url, ["sku-1"])
    await reader.started()
    assert reader.process.pid != os.getpid()
    await asked.at_least(5)
    reader.stop()
    took, failed = await reader.result()
    assert failed == 0 and len(took) == len(asked) >= 5
    assert not reader.process.is_alive()


def pauser(*switches: tuple[float, bool]) -> Pauser:
    made = Pauser(os.getpid())
    made.switches = list(switches)
    return made


def test_reads_are_split_by_whether_the_build_ran_and_those_across_a_switch_are_left_out(
        ) -> None:
    build = pauser((10.0, True), (11.0, False), (11.5, True), (12.5, False))
    reads = [
        (9.0, 0.001),  # before the build was found
        (10.5, 0.002),  # running
        (10.999, 0.01),  # across the stop
        (11.0 + SETTLE / 2, 0.001),  # just after the stop
        (11.2, 0.003),  # stopped
        (11.6, 0.004),  # running again
        (13.0, 0.005),  # stopped, to the end
    ]
    assert build.split(reads) == ([0.002, 0.004], [0.003, 0.005])
    assert pauser().split(reads[:2]) == ([0.001, 0.002], [])


async def test_the_pauser_stops_the_build_process_in_turn_and_leaves_it_running() -> None:
    build = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", "build-apart")
    child = psutil.Process(build.pid)
    try:
        pauser = Pauser(os.getpid())
        pausing = asyncio.create_task(pauser.run())
        seen = set()
        deadline = time.monotonic() + WAIT
        while len(pauser.switches) < 3 and time.monotonic() < deadline:
            if len(pauser.switches) == 2:  # found, stopped: not yet continued
                seen.add(child.status())
            await asyncio.sleep(0.005)
        assert [running for _, running in pauser.switches] == [True, False, True]
        assert psutil.STATUS_STOPPED in seen
        pausing.cancel()
        await asyncio.gather(pausing, return_exceptions=True)
        assert child.status() != psutil.STATUS_STOPPED
        assert pauser.switches[1][0] - pauser.switches[0][0] >= RUNS_FOR
    finally:
        build.kill()
        await build.wait()
