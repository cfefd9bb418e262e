"""GET /cluster flags a worker that does not answer instead of leaving it out."""

import aiohttp

from tests.integration.cluster import free_port
from web.cluster import ask


async def test_a_worker_that_does_not_answer_is_flagged_with_the_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with aiohttp.ClientSession() as http:
        part = await ask(http, url)
    assert part["worker"] == url and part["answered"] is False
    assert part["error"].startswith("did not answer: ClientConnectorError")
