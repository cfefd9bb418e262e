"""Phase r's reader (bench/rebuild.py): reads from a process of its own, so that a busy
bench process does not time them late."""

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bench.rebuild import LiveReader, read_apart


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str]]]:
    """A view endpoint on 127.0.0.1 that answers 404 for `sku-missing`; the skus asked."""
    asked: list[str] = []

    async def row(request: web.Request) -> web.Response:
        asked.append(request.match_info["sku"])
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
        server: tuple[str, list[str]]) -> None:
    url, asked = server
    took, failed = await read_apart(url, ["sku-1", "sku-2", "sku-missing"], 30)
    assert len(took) + failed == 30 == len(asked)
    assert failed == asked.count("sku-missing") > 0
    assert all(0 < seconds < 5 for seconds in took)


async def test_a_reader_without_a_count_reads_in_its_own_process_until_stopped(
        server: tuple[str, list[str]]) -> None:
    url, asked = server
    reader = LiveReader(url, ["sku-1"])
    await reader.started()
    assert reader.process.pid != os.getpid()
    await asyncio.sleep(0.3)
    reader.stop()
    took, failed = await reader.result()
    assert failed == 0 and len(took) == len(asked) > 1
    assert not reader.process.is_alive()
