"""List queries across partitions: GET /views/{view} fans out to the owners of every
partition, each answers for its own on /_local/views/{view}, and the pages merge in key order.
"""

import asyncio
from functools import partial
from typing import Any

import aiohttp
from faust.types import TP
from faust.web import Request, Response, View

from streams.app import app, settings
from streams.partitioning import owning_partition
from streams.tokens import Token
from tables.listing import BadList, Found, Query, merge, parse
from tables.registry import VIEWS
from tables.storage import VIEW_TABLES, list_partition, read_row
from tables.view import View as ReadView
from web import consistency
from web.queries import BadQuery, seconds
from web.routing import is_self
from web.views import MAX_WAIT

WAITS = ("token", "timeout")
ANSWER_SECONDS = 5.0  # for an owner to answer, beyond the wait asked for; then it is missing
Page = tuple[list[Found], bool]


def _listed(name: str) -> ReadView:
    view = VIEWS.get(name)
    if view is None:
        raise LookupError(f"no view named {name!r}")
    if view.listing is None:
        raise LookupError(f"{name} has no list query; lists: "
                          f"{', '.join(sorted(n for n, v in VIEWS.items() if v.listing))}")
    return view


def _request(view: ReadView, request: Request,
             extra: tuple[str, ...] = ()) -> tuple[Query, consistency.Wanted, float]:
    assert view.listing is not None
    params = {name: request.query.getone(name) for name in request.query}
    if len(params) != len(request.query):
        raise BadList("give each parameter once")
    query = parse(view.listing, params, (*WAITS, *extra))
    token = None
    if "token" in params:
        try:
            token = Token.decode(params["token"])
        except ValueError as exc:
            raise BadList(str(exc)) from None
    try:
        timeout = seconds(request.query, "timeout",
                          settings.read_wait if token else 0.0, MAX_WAIT)
    except BadQuery as exc:
        raise BadList(str(exc)) from None
    return query, consistency.Wanted(token), timeout


def owners(view: ReadView) -> tuple[dict[str, list[int]], list[int]]:
    """Worker URL -> the view's partitions it holds active; and the partitions nobody holds."""
    changelog = VIEW_TABLES[view.name].changelog_topic.get_topic_name()
    held: dict[str, list[int]] = {}
    for url, topics in app.router.tables_metadata().items():
        for partition in topics.get(changelog, ()):
            held.setdefault(str(url), []).append(partition)
    taken = {p for parts in held.values() for p in parts}
    return held, [p for p in range(settings.partitions) if p not in taken]


def _active_here(view: ReadView) -> set[int]:
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return set()
    changelog = VIEW_TABLES[view.name].changelog_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives()
            if isinstance(tp, TP) and tp.topic == changelog}


async def local_pages(view: ReadView, partitions: list[int], query: Query,
                      wanted: consistency.Wanted, timeout: float) -> dict[str, Any]:
    """This worker's answer for the partitions it was asked about: each one's page, position
    and what it still lacks of the token; the partitions it does not hold are missing."""
    active = _active_here(view)
    mine = [p for p in partitions if p in active]
    token = wanted.token

    def token_row(partition: int) -> Any:
        if token is None or owning_partition(token.aggregate_id, settings.partitions) != partition:
            return None
        return read_row(view.name, token.aggregate_id)

    lacking = await asyncio.gather(*(consistency.wait_partition(
        view, p, wanted, timeout, partial(token_row, p)) for p in mine))
    pages = {}
    for partition, behind in zip(mine, lacking, strict=True):
        rows, more = list_partition(view, partition, query)
        pages[str(partition)] = {
            "rows": [[key, data] for key, data in rows], "more": more, "behind": behind,
            "positions": {str(s): o for s, o in consistency.reached(view, partition).items()}}
    return {"pages": pages, "missing": [p for p in partitions if p not in active]}


async def _remote_pages(url: str, view: ReadView, partitions: list[int],
                        request: Request, timeout: float) -> dict[str, Any]:
    params = [(k, v) for k, v in request.query.items()]
    params.append(("partitions", ",".join(map(str, partitions))))
    wait = aiohttp.ClientTimeout(total=ANSWER_SECONDS + timeout)
    try:
        async with app.http_client.get(f"{url.rstrip('/')}/_local/views/{view.name}",
                                       params=params, timeout=wait) as response:
            if response.status == 200:
                answer: dict[str, Any] = await response.json()
                return answer
    except (aiohttp.ClientError, TimeoutError, ValueError):
        pass
    return {"pages": {}, "missing": partitions}


def combine(answers: list[dict[str, Any]], unowned: list[int],
            limit: int) -> tuple[list[Found], str | None, dict[str, Any]]:
    """The owners' answers as one page, its next cursor and the meta saying what it reflects."""
    pages: list[Page] = []
    positions: dict[str, int] = {}
    behind: dict[str, int] = {}
    missing = list(unowned)
    for answer in answers:
        missing += answer["missing"]
        for page in answer["pages"].values():
            pages.append(([(key, data) for key, data in page["rows"]], page["more"]))
            positions |= page["positions"]
            behind |= page["behind"]
    rows, cursor = merge(pages, limit)
    meta: dict[str, Any] = {
        "limit": limit, "count": len(rows), "next_cursor": cursor,
        "positions": dict(sorted(positions.items(), key=lambda item: int(item[0]))),
        "partial": bool(missing), "missing_partitions": sorted(missing),
        "stale": bool(behind), "served_by": str(app.conf.canonical_url)}
    if behind:
        meta["behind"] = behind
    return rows, cursor, meta


@app.page("/views/{view}")
class ViewList(View):
    async def get(self, request: Request, view: str) -> Response:
        """Every row of a view that matches the filters, a page at a time, from all workers."""
        try:
            listed = _listed(view)
        except LookupError as exc:
            return self.error(404, str(exc), views=sorted(VIEWS))
        try:
            query, wanted, timeout = _request(listed, request)
        except BadList as exc:
            return self.error(400, str(exc))
        held, unowned = owners(listed)
        answers = await asyncio.gather(*(
            local_pages(listed, parts, query, wanted, timeout) if is_self(url)
            else _remote_pages(url, listed, parts, request, timeout)
            for url, parts in held.items()))
        rows, _, meta = combine(list(answers), unowned, query.limit)
        return self.json({"data": [data for _, data in rows], "meta": meta})


@app.page("/_local/views/{view}")
class LocalList(View):
    async def get(self, request: Request, view: str) -> Response:
        """Internal: this worker's pages of a list query for the partitions named."""
        try:
            listed = _listed(view)
        except LookupError as exc:
            return self.error(404, str(exc))
        try:
            query, wanted, timeout = _request(listed, request, ("partitions",))
            partitions = _partitions(request.query.get("partitions", ""))
        except BadList as exc:
            return self.error(400, str(exc))
        return self.json(await local_pages(listed, partitions, query, wanted, timeout))


def _partitions(raw: str) -> list[int]:
    try:
        partitions = sorted({int(p) for p in raw.split(",")})
    except ValueError:
        raise BadList(f"partitions must be partition numbers separated by commas, "
                      f"not {raw!r}") from None
    if not all(0 <= p < settings.partitions for p in partitions):
        raise BadList(f"partitions are numbered 0 to {settings.partitions - 1}")
    return partitions
