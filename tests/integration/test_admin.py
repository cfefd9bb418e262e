"""No unauthenticated admin surface: Faust's own pages are not served, and the dead-letter
operations answer only to the admin token (worker-1 has one; worker-2 has none: off)."""

import asyncio
import base64
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.cluster import Worker
from tests.integration.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration
FAUST_PAGES = ("/router/", "/router/list/", "/table/", "/stats/", "/assignment/",
               "/graph/", "/performance/", "/signal/")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_faust_pages_are_not_served_even_with_the_token(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    for worker in workers:
        for path in FAUST_PAGES:
            async with http.get(f"{worker.url}{path}", headers=ADMIN) as response:
                assert response.status == 404, (worker.name, path, await response.text())
                assert "no such path" in (await response.json())["error"]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/admin/dead-letters"),
    ("POST", "/admin/dead-letters/replay"),
    ("POST", "/admin/dead-letters/discard"),
])
async def test_admin_operations_need_the_token_and_are_off_without_one(
    workers: list[Worker], http: aiohttp.ClientSession, method: str, path: str,
) -> None:
    with_token, without_token = workers
    async with http.request(method, f"{with_token.url}{path}") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in (await response.json())["error"]
    for wrong in ("Bearer nope", f"Basic {ADMIN_TOKEN}", f"Bearer {ADMIN_TOKEN}x"):
        async with http.request(method, f"{with_token.url}{path}",
                                headers={"Authorization": wrong}) as response:
            assert response.status in (401, 403), wrong
            assert ADMIN_TOKEN not in await response.text()
    async with http.request(method, f"{with_token.url}{path}",
                            headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 403
    async with http.request(method, f"{without_token.url}{path}", headers=ADMIN) as response:
        assert response.status == 404
        assert "admin operations are off" in (await response.json())["error"]


async def test_dead_letters_are_listed_replayed_and_discarded_over_http(
    workers: list[Worker], producer: AIOKafkaProducer, prefix: str,
    http: aiohttp.ClientSession,
) -> None:
    url = f"{workers[0].url}/admin/dead-letters"
    poison = f"poison {uuid4()}".encode()
    await producer.send_and_wait(f"{prefix}.commands", poison, key=b"junk")
    [letter] = await letters_when(http, url, lambda found: len(found) == 1, poison)
    assert (letter["state"], letter["source_topic"]) == ("waiting", f"{prefix}.commands")

    async with http.post(f"{url}/replay", json={"ids": [letter["dead_letter_id"]]},
                         headers=ADMIN) as response:
        assert response.status == 200
        assert await response.json() == {"replayed": [letter["dead_letter_id"]]}
    first, again = await letters_when(http, url, lambda found: len(found) == 2, poison,
                                      everything=True)
    assert (first["state"], again["state"]) == ("resolved", "waiting")
    assert again["source_offset"] > first["source_offset"]  # re-submitted, parked again

    unknown = str(uuid4())
    async with http.post(f"{url}/discard", json={"ids": [unknown]}, headers=ADMIN) as response:
        assert response.status == 404 and unknown in (await response.json())["error"]
    async with http.post(f"{url}/discard", json={"ids": ["x"]}, headers=ADMIN) as response:
        assert response.status == 422
    async with http.post(f"{url}/discard", data=b"{", headers=ADMIN) as response:
        assert response.status == 400
    async with http.post(f"{url}/discard", json={"ids": [again["dead_letter_id"]]},
                         headers=ADMIN) as response:
        assert await response.json() == {"discarded": [again["dead_letter_id"]]}
    await letters_when(http, url, lambda found: not found, poison)
    for worker in workers:
        assert ADMIN_TOKEN not in worker.log_path.read_text(errors="replace")


async def letters_when(http: aiohttp.ClientSession, url: str, condition: Any, value: bytes,
                       everything: bool = False, timeout: float = 60) -> list[dict[str, Any]]:
    """The dead letters carrying `value`, oldest first, once `condition` holds for them."""
    async def poll() -> list[dict[str, Any]]:
        while True:
            status, body = await get_json_with(http, f"{url}?all={str(everything).lower()}")
            assert status == 200, body
            found = sorted((letter for letter in body["dead_letters"]
                            if letter["value"] == base64.b64encode(value).decode()),
                           key=lambda letter: letter["source_offset"])
            if condition(found):
                return found
            await asyncio.sleep(0.2)
    return await asyncio.wait_for(poll(), timeout)


async def get_json_with(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url, headers=ADMIN) as response:
        return response.status, await response.json()
