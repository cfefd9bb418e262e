"""HTTP API on every worker: POST /commands, GET /views/{view}/{key}, /health, /ready."""

from typing import Any

from faust.web import Request, Response, View
from pydantic import ValidationError

from agents.projector import VIEW_TABLES, read_row, read_windows
from streams import topics
from streams.app import app
from streams.envelopes import encode, parse_command
from tables.registry import VIEWS
from web.errors import field_errors
from web.queries import BadQuery, page, window_starts
from web.routing import forward, is_self, owner_url

MAX_COMMAND_BYTES = 64 * 1024
MAX_KEY_LENGTH = 200


@app.page("/commands")
class Commands(View):
    async def post(self, request: Request) -> Response:
        if request.content_type != "application/json":
            return self.error(415, "send the command as application/json")
        if (request.content_length or 0) > MAX_COMMAND_BYTES:
            return self.error(413, f"a command is at most {MAX_COMMAND_BYTES} bytes")
        body = await request.content.read(MAX_COMMAND_BYTES + 1)
        if len(body) > MAX_COMMAND_BYTES:
            return self.error(413, f"a command is at most {MAX_COMMAND_BYTES} bytes")
        try:
            command = parse_command(body)
        except ValidationError as exc:
            return self.error(422, "invalid command", details=field_errors(exc))
        sent = await topics.commands.send(key=command.aggregate_id.encode(), value=encode(command))
        await sent
        return self.json({"command_id": str(command.command_id), "status": "submitted"}, status=202)


@app.page("/views/{view}/{key}")
class ViewRow(View):
    async def get(self, request: Request, view: str, key: str) -> Response:
        if view not in VIEWS:
            return self.error(404, f"no view named {view!r}", views=sorted(VIEWS))
        if len(key) > MAX_KEY_LENGTH:
            return self.error(400, f"a key is at most {MAX_KEY_LENGTH} characters")
        owner = owner_url(VIEW_TABLES[view], key)
        if owner is None:
            return self.error(503, "partitions are being assigned; retry shortly")
        if not is_self(owner):
            return await forward(self.web, request, owner)
        return self.local(request, view, key)

    def local(self, request: Request, view: str, key: str) -> Response:
        try:
            if VIEWS[view].window:
                return self.windows(request, view, key)
            return self.row(request, view, key)
        except BadQuery as exc:
            return self.error(400, str(exc))

    def row(self, request: Request, view: str, key: str) -> Response:
        row = read_row(view, key)
        if row is None:
            return self.error(404, f"{view} has no row {key!r}")
        data, extra = row["data"], {}
        paged = VIEWS[view].paged
        if paged:
            items, extra = page(data[paged], request.query)
            data = {**data, paged: items}
        return self.json({"data": data, "meta": {**meta(row), **extra}})

    def windows(self, request: Request, view: str, key: str) -> Response:
        window = VIEWS[view].window
        assert window is not None
        starts, begin, end = window_starts(request.query, window)
        rows = read_windows(view, key, starts)
        return self.json({
            "data": {"key": key, "windows": [row["data"] for row in rows]},
            "meta": {"from": begin.isoformat(), "to": end.isoformat(), "window_seconds": window,
                     "stale": False, "served_by": str(app.conf.canonical_url)},
        })


def meta(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": row["data"].get("version"),
        "versions": row["versions"],
        "occurred_at": row["occurred_at"],
        "stale": False,
        "served_by": str(app.conf.canonical_url),
    }


@app.page("/health")
class Health(View):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok"})


@app.page("/ready")
class Ready(View):
    async def get(self, request: Request) -> Response:
        recovered = app.tables.recovery.completed.is_set()
        if app.rebalancing or app.in_recovery or not recovered:
            return self.json({"ready": False, "rebalancing": app.rebalancing,
                              "recovering": app.in_recovery}, status=503)
        return self.json({"ready": True})
