"""Asking the owners of every partition of a view, and what their answers together reflect."""

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from faust.types import TP
from faust.web import Request

from streams.app import app, settings
from streams.partitioning import owning_partition
from streams.tokens import Token
from tables.storage import VIEW_TABLES, read_row
from tables.view import View
from web import consistency
from web.queries import BadQuery, seconds
from web.routing import is_self
from web.views import MAX_WAIT

ANSWER_SECONDS = 5.0  # for an owner to answer, beyond the wait asked for; then it is missing
Answer = dict[str, Any]  # {"pages": {partition: {..., "positions", "behind"}}, "missing": [...]}


class BadRequest(ValueError):
    """A parameter that cannot be used; the message says which."""


def single(request: Request) -> dict[str, str]:
    params = {name: request.query.getone(name) for name in request.query}
    if len(params) != len(request.query):
        raise BadRequest("give each parameter once")
    return params


def wanted(request: Request) -> tuple[consistency.Wanted, float]:
    """The token every partition must reflect, and how long to wait for it."""
    token = None
    if "token" in request.query:
        try:
            token = Token.decode(request.query["token"])
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    try:
        timeout = seconds(request.query, "timeout",
                          settings.read_wait if token else 0.0, MAX_WAIT)
    except BadQuery as exc:
        raise BadRequest(str(exc)) from None
    return consistency.Wanted(token), timeout


def owners(view: View) -> tuple[dict[str, list[int]], list[int]]:
    """Worker URL -> the view's partitions it holds active; and the partitions nobody holds."""
    changelog = VIEW_TABLES[view.name].changelog_topic.get_topic_name()
    held: dict[str, list[int]] = {}
    for url, topics in app.router.tables_metadata().items():
        for partition in topics.get(changelog, ()):
            held.setdefault(str(url), []).append(partition)
    taken = {p for parts in held.values() for p in parts}
    return held, [p for p in range(settings.partitions) if p not in taken]


def active_here(view: View) -> set[int]:
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return set()
    changelog = VIEW_TABLES[view.name].changelog_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives()
            if isinstance(tp, TP) and tp.topic == changelog}


async def local(view: View, partitions: list[int], want: consistency.Wanted, timeout: float,
                answer: Callable[[int], Answer]) -> Answer:
    """This worker's answer for the partitions asked about that it holds, once each reflects
    the token (or the time is up); `answer(p)` reads one partition."""
    active = active_here(view)
    mine = [p for p in partitions if p in active]
    token = want.token

    def token_row(partition: int) -> Any:
        if token is None or owning_partition(token.aggregate_id, settings.partitions) != partition:
            return None
        return read_row(view.name, token.aggregate_id)

    lacking = await asyncio.gather(*(consistency.wait_partition(
        view, p, want, timeout, partial(token_row, p)) for p in mine))
    pages = {}
    for partition, behind in zip(mine, lacking, strict=True):
        pages[str(partition)] = {
            **answer(partition), "behind": behind,
            "positions": {str(s): o for s, o in consistency.reached(view, partition).items()}}
    return {"pages": pages, "missing": [p for p in partitions if p not in active]}


async def _remote(url: str, path: str, partitions: list[int], request: Request,
                  timeout: float) -> Answer:
    params = [*request.query.items(), ("partitions", ",".join(map(str, partitions)))]
    try:
        async with app.http_client.get(f"{url.rstrip('/')}{path}", params=params,
                                       timeout=aiohttp.ClientTimeout(
                                           total=ANSWER_SECONDS + timeout)) as response:
            if response.status == 200:
                found: Answer = await response.json()
                return found
    except (aiohttp.ClientError, TimeoutError, ValueError):
        pass
    return {"pages": {}, "missing": partitions}


async def ask_all(view: View, request: Request, local_path: str, timeout: float,
                  here: Callable[[list[int]], Awaitable[Answer]]) -> tuple[list[Answer], list[int]]:
    """Every owner's answer (this worker's own by `here`, the others' over `local_path`), and
    the partitions nobody holds."""
    held, unowned = owners(view)
    answers = await asyncio.gather(*(
        here(parts) if is_self(url) else _remote(url, local_path, parts, request, timeout)
        for url, parts in held.items()))
    return list(answers), unowned


def meta(answers: list[Answer], unowned: list[int]) -> dict[str, Any]:
    """What the answers reflect together: per event-log partition the offset every partition
    answered has reached, the partitions missing, and what a stale answer lacks."""
    positions: dict[str, int] = {}
    behind: dict[str, int] = {}
    missing = list(unowned)
    for answer in answers:
        missing += answer["missing"]
        for page in answer["pages"].values():
            for source, offset in page["positions"].items():
                positions[source] = min(offset, positions.get(source, offset))
            behind |= page["behind"]
    found: dict[str, Any] = {
        "positions": dict(sorted(positions.items(), key=lambda item: int(item[0]))),
        "partial": bool(missing), "missing_partitions": sorted(missing),
        "stale": bool(behind), "served_by": str(app.conf.canonical_url)}
    if behind:
        found["behind"] = behind
    return found


def partitions(raw: str) -> list[int]:
    try:
        found = sorted({int(p) for p in raw.split(",")})
    except ValueError:
        raise BadRequest(f"partitions must be partition numbers separated by commas, "
                         f"not {raw!r}") from None
    if not all(0 <= p < settings.partitions for p in found):
        raise BadRequest(f"partitions are numbered 0 to {settings.partitions - 1}")
    return found
