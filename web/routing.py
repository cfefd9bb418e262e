"""Send a query to the worker whose active table partition holds the key."""

from typing import Any

import aiohttp
from faust.types import TableT
from faust.web import Request, Response, Web

from streams.app import app, settings
from streams.partitioning import owning_partition
from tables.registry import VIEWS
from tables.storage import VIEW_TABLES
from web.inputs import BadInput, path_key

FORWARD_TIMEOUT = 60.0
CONNECT_TIMEOUT = 2.0


def owner_url(table: TableT, key: str) -> str | None:
    """The canonical URL of the worker holding `key`, or None while partitions are unassigned.

    The partition is computed here rather than asked of Faust's producer, whose metadata
    knows a changelog topic only after this worker has written to it.
    """
    partition = owning_partition(key, settings.partitions)
    changelog = table.changelog_topic.get_topic_name()
    for url, topics in app.router.tables_metadata().items():
        if partition in topics.get(changelog, ()):
            return str(url)
    return None


def is_self(url: str) -> bool:
    return url.rstrip("/") == str(app.conf.canonical_url).rstrip("/")


async def forward(web: Web, url: str, path_qs: str, timeout: float = FORWARD_TIMEOUT) -> Response:
    """GET `path_qs` from the worker at `url` and answer with what it answered; 503 if it
    does not answer within `timeout` seconds."""
    target = f"{url.rstrip('/')}{path_qs}"
    limits = aiohttp.ClientTimeout(total=timeout, sock_connect=CONNECT_TIMEOUT)
    try:
        async with app.http_client.get(target, timeout=limits) as response:
            return web.bytes(await response.read(), content_type=response.content_type,
                             status=response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return web.json({"error": f"the worker owning this key ({url}) did not answer: {exc}"},
                        status=503)


class Unroutable(Exception):
    """A view row request that cannot go anywhere: its status, message and extra fields."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def locate(request: Request, view: str) -> tuple[str, str | None]:
    """The checked key of a `/views/{view}/{key}...` request and the URL of its owner, None
    while partitions are being assigned."""
    if view not in VIEWS:
        raise Unroutable(404, f"no view named {view!r}", views=sorted(VIEWS))
    try:
        key = path_key(request, 3)
    except BadInput as exc:
        raise Unroutable(exc.status, str(exc)) from exc
    return key, owner_url(VIEW_TABLES[view], key)
