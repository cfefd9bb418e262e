"""HTTP API on every worker: commands in (and their results), views out, health and readiness."""

from typing import Any
from uuid import UUID

import orjson
from aiokafka.errors import KafkaError
from faust.web import Request, Response, View
from pydantic import ValidationError

from agents import dead_letters
from agents.builders import live_view, read_live_row, read_live_windows
from agents.dead_letter_watch import LEDGER
from streams import topics
from streams.app import app, settings
from streams.commands import INTERNAL, internal_rule
from streams.envelopes import CommandResult, encode, parse_command
from streams.partitioning import owning_partition
from streams.tokens import Token
from tables.registry import VIEWS, is_resident
from tables.results import RESULTS, wait_for_result
from tables.storage import VIEW_TABLES
from tables.view import View as ViewSpec
from web import consistency, monitoring, replicas
from web.errors import field_errors
from web.inputs import BadInput, read_body
from web.queries import (
    BadQuery,
    flag,
    integer,
    page,
    page_bounds,
    seconds,
    window_starts,
)
from web.routing import Unroutable, forward, is_self, locate, owner_url

MAX_WAIT = 30.0
FORWARD_MARGIN = 5.0
"""Seconds an owner has beyond the read's own wait before the row is served from a local
copy (flagged stale): a stopped owner accepts connections but never answers."""
MAX_VERSION = 2**53  # past any aggregate's version, and inside every JSON reader's integers


@app.page("/commands")
class Commands(View):
    async def post(self, request: Request) -> Response:
        if request.content_type != "application/json":
            return self.error(415, "send the command as application/json")
        try:
            wait = flag(request.query, "wait", True)
            timeout = seconds(request.query, "timeout", settings.command_wait, MAX_WAIT)
            command = parse_command(await _json_body(request))
        except BadQuery as exc:
            return self.error(400, str(exc))
        except BadInput as exc:
            return self.error(exc.status, str(exc))
        except ValidationError as exc:
            return self.error(422, "invalid command", details=field_errors(exc))
        if command.type in INTERNAL:
            return self.error(403, internal_rule(command.type))
        try:
            sent = await topics.commands.send(key=command.aggregate_id.encode(),
                                              value=encode(command))
            await sent
        except KafkaError as exc:  # a leader moving, a broker away: the client may retry
            return self.error(503, f"Kafka did not take the command ({type(exc).__name__}); "
                              "send it again: its command id makes a retry safe")
        monitoring.COMMANDS_SUBMITTED.inc()
        command_id = str(command.command_id)
        submitted = {"command_id": command_id, "status": "submitted"}
        if not wait:
            return self.json(submitted, status=202)
        owner = owner_url(RESULTS, command_id)
        if owner is not None and not is_self(owner):
            answer = await forward(self.web, owner, f"/commands/{command_id}?wait={timeout}")
            return answer if answer.status != 404 else self.json(submitted, status=202)
        result = await wait_for_result(command_id, timeout)
        return self.json(submitted, status=202) if result is None else _answer(self, result)


@app.page("/commands/{command_id}")
class CommandStatus(View):
    async def get(self, request: Request, command_id: str) -> Response:
        try:
            UUID(command_id)
            timeout = seconds(request.query, "wait", 0.0, MAX_WAIT)
        except (ValueError, BadQuery) as exc:
            return self.error(400, str(exc) if isinstance(exc, BadQuery) else
                              f"{command_id!r} is not a command id (a UUID)")
        owner = owner_url(RESULTS, command_id)
        if owner is None:
            return self.error(503, "partitions are being assigned; retry shortly")
        if not is_self(owner):
            return await forward(self.web, owner, str(request.rel_url))
        result = await wait_for_result(command_id, timeout)
        if result is None:
            return self.error(404, f"no result for command {command_id} yet")
        return _answer(self, result)


async def _json_body(request: Request) -> bytes:
    """The body, refused unless it parses as JSON; whether it is a command is checked after."""
    body = await read_body(request, settings.max_body)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(400, f"the body is not UTF-8: {exc}") from None
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(400, f"the body is not JSON: {exc}") from None
    return body


def _answer(view: View, result: CommandResult) -> Response:
    body = {**result.model_dump(mode="json"), "token": Token.of(result).encode()}
    return view.json(body, status=200 if result.status == "accepted" else 409)


@app.page("/views/{view}/{key}")
class ViewRow(View):
    async def get(self, request: Request, view: str, key: str) -> Response:
        try:
            key, owner = locate(request, view)
            wanted, timeout = _wanted(request, VIEWS[view])
        except Unroutable as exc:
            return self.error(exc.status, str(exc), **exc.extra)
        except BadQuery as exc:
            return self.error(400, str(exc))
        if owner is None or not is_self(owner):
            answer = None if owner is None else await forward(
                self.web, owner, str(request.rel_url), timeout + FORWARD_MARGIN)
            if answer is not None and answer.status < 500:
                return answer
            if not replicas.holding(VIEW_TABLES[view], key).local:
                return answer or self.error(503, "partitions are being assigned; retry shortly")
        try:
            if VIEWS[view].window:
                return await self.windows(request, view, key, wanted, timeout)
            return await self.row(request, live_view(view), key, wanted, timeout)
        except BadQuery as exc:
            return self.error(400, str(exc))
        except LookupError as exc:
            return self.error(503, f"{exc}; retry shortly")

    async def row(self, request: Request, spec: ViewSpec, key: str,
                  wanted: consistency.Wanted, timeout: float) -> Response:
        view, paged = spec.name, spec.paged
        bounds = page_bounds(request.query) if paged else (0, 0)
        row, missing = await consistency.wait(spec, key, wanted, timeout,
                                              lambda: read_live_row(spec, key))
        if row is None:
            return self.error(404, f"{view} has no row {key!r}",
                              **_meta(spec, key, missing))
        data, extra = row["data"], {}
        if paged:
            items, extra = page(data[paged], *bounds)
            data = {**data, paged: items}
        meta = {"version": data.get("version"), "versions": row["versions"],
                "occurred_at": row["occurred_at"], **_meta(spec, key, missing), **extra}
        return self.json({"data": data, "meta": meta})

    async def windows(self, request: Request, view: str, key: str,
                      wanted: consistency.Wanted, timeout: float) -> Response:
        spec = live_view(view)
        window = spec.window
        assert window is not None
        starts, begin, end = window_starts(request.query, window)
        rows, missing = await consistency.wait(spec, key, wanted, timeout,
                                               lambda: read_live_windows(spec, key, starts))
        return self.json({
            "data": {"key": key, "windows": [row["data"] for row in rows]},
            "meta": {"from": begin.isoformat(), "to": end.isoformat(), "window_seconds": window,
                     **_meta(spec, key, missing)},
        })


def _wanted(request: Request, view: Any) -> tuple[consistency.Wanted, float]:
    query = request.query
    token = min_version = None
    if "token" in query:
        try:
            token = Token.decode(query["token"])
        except ValueError as exc:
            raise BadQuery(str(exc)) from None
    if "min_version" in query:
        if not view.by_aggregate:
            raise BadQuery(f"min_version needs a view keyed by aggregate; {view.name} is not")
        min_version = integer(query, "min_version", 0, 0, MAX_VERSION)
    waiting = token is not None or min_version is not None
    timeout = seconds(query, "timeout", settings.read_wait if waiting else 0.0, MAX_WAIT)
    return consistency.Wanted(token, min_version), timeout


def _meta(view: ViewSpec, key: str, missing: dict[str, int]) -> dict[str, Any]:
    """Where the row comes from and how far it trails. A row is stale when it lacks what the
    reader asked for, or comes from a copy other than the recovered active's (`copy`)."""
    partition = owning_partition(key, settings.partitions)
    held = replicas.holding(VIEW_TABLES[view.name], key,
                            view.name if is_resident(view) else None)
    meta: dict[str, Any] = {
        "stale": bool(missing) or not held.fresh,
        "copy": held.role,
        "applied": {str(p): o for p, o in consistency.reached(view, partition).items()},
        "lag": consistency.lag(VIEWS[view.name], key),
        "served_by": str(app.conf.canonical_url),
        "view_version": view.version,
    }
    if missing:
        meta["behind"] = missing
    if not held.fresh:
        meta["changelog_behind"] = held.behind
    return meta


@app.page("/health")
class Health(View):
    async def get(self, request: Request) -> Response:
        """Alive; `degraded` while dead letters, parked by any worker, wait to be replayed or
        discarded."""
        waiting = len(LEDGER.waiting())
        return self.json({"status": "degraded" if waiting else "ok", "dead_letters": waiting,
                          "parked_here": sum(dead_letters.parked.values())})


@app.page("/ready")
class Ready(View):
    async def get(self, request: Request) -> Response:
        recovered = app.tables.recovery.completed.is_set()
        if app.rebalancing or app.in_recovery or not recovered:
            return self.json({"ready": False, "rebalancing": app.rebalancing,
                              "recovering": app.in_recovery}, status=503)
        return self.json({"ready": True})
