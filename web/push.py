"""Server-Sent Events: GET /views/{view}/{key}/events streams every new version of a row.

The stream starts with the current row (unless the client's Last-Event-ID says it has it)
and then sends each version the projection writes, in order. The owner of the key serves
it; any other worker redirects there. An event's id is the sum of the row's aggregate
versions, which grows with every change, so a reconnecting client is sent the row again
only if it changed meanwhile.
"""

import asyncio
from typing import Any

import orjson
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View

from streams.app import app
from tables.registry import VIEWS
from tables.storage import read_row
from tables.subscriptions import CLOSED, subscriptions
from web.routing import Unroutable, is_self, locate

HEARTBEAT_SECONDS = 15.0


def event_id(row: dict[str, Any]) -> int:
    return sum(row["versions"].values())


def frame(row: dict[str, Any]) -> bytes:
    body = orjson.dumps({"data": row["data"], "meta": {"versions": row["versions"],
                                                       "occurred_at": row["occurred_at"]}})
    return b"id: %d\nevent: row\ndata: %s\n\n" % (event_id(row), body)


@app.page("/views/{view}/{key}/events")
class RowEvents(View):
    async def get(self, request: Request, view: str, key: str) -> Response:
        if view in VIEWS and VIEWS[view].window:
            return self.error(400, f"{view} is windowed; query it by time range instead")
        try:
            key, owner = locate(request, view)
        except Unroutable as exc:
            return self.error(exc.status, str(exc), **exc.extra)
        if owner is None:
            return self.error(503, "partitions are being assigned; retry shortly")
        if not is_self(owner):
            location = f"{owner.rstrip('/')}{request.rel_url}"
            return self.json({"location": location}, status=307, headers={"Location": location})
        try:
            seen = int(request.headers.get("Last-Event-ID", "-1"))
        except ValueError:
            return self.error(400, "Last-Event-ID must be an event id this stream sent")
        return await stream(request, view, key, seen)


async def stream(request: Any, view: str, key: str, seen: int) -> Any:
    mailbox = subscriptions.subscribe(view, key)  # before reading, so no version slips between
    response = aiohttp_web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        # Any worker's console may follow a row here: a 307 from another worker leads here.
        "Access-Control-Allow-Origin": "*"})
    try:
        await response.prepare(request)
        current = read_row(view, key)
        if current is not None and event_id(current) > seen:
            await response.write(frame(current))
            seen = event_id(current)
        while True:
            try:
                row = await asyncio.wait_for(mailbox.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            if row is CLOSED:
                break
            if event_id(row) > seen:
                await response.write(frame(row))
                seen = event_id(row)
    except ConnectionResetError:
        pass  # the client went away
    finally:
        subscriptions.unsubscribe(view, key, mailbox)
    return response


@app.on_partitions_revoked.connect
async def end_streams(app: Any, revoked: Any, **_: Any) -> None:
    subscriptions.close_all()
