"""List queries across partitions: GET /views/{view} fans out to the owners of every
partition, each answers for its own on /_local/views/{view}, and the pages merge in key order.
"""

from functools import partial
from typing import Any

from faust.web import Request, Response, View

from streams.app import app
from tables.listing import BadList, Query, merge, parse
from tables.registry import VIEWS
from tables.storage import list_partition
from tables.view import View as ReadView
from web import consistency, fanout
from web.fanout import BadRequest

WAITS = ("token", "timeout")


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
    query = parse(view.listing, fanout.single(request), (*WAITS, *extra))
    want, timeout = fanout.wanted(request)
    return query, want, timeout


def _page(view: ReadView, query: Query, partition: int) -> dict[str, Any]:
    rows, more = list_partition(view, partition, query)
    return {"rows": [[key, data] for key, data in rows], "more": more}


async def _here(view: ReadView, query: Query, want: consistency.Wanted, timeout: float,
                partitions: list[int]) -> fanout.Answer:
    return await fanout.local(view, partitions, want, timeout, partial(_page, view, query))


@app.page("/views/{view}")
class ViewList(View):
    async def get(self, request: Request, view: str) -> Response:
        """Every row of a view that matches the filters, a page at a time, from all workers."""
        try:
            listed = _listed(view)
        except LookupError as exc:
            return self.error(404, str(exc), views=sorted(VIEWS))
        try:
            query, want, timeout = _request(listed, request)
        except (BadList, BadRequest) as exc:
            return self.error(400, str(exc))
        answers, unowned = await fanout.ask_all(
            listed, request, f"/_local/views/{view}", timeout,
            partial(_here, listed, query, want, timeout))
        pages = [([(key, data) for key, data in page["rows"]], page["more"])
                 for answer in answers for page in answer["pages"].values()]
        rows, cursor = merge(pages, query.limit)
        return self.json({"data": [data for _, data in rows], "meta": {
            "limit": query.limit, "count": len(rows), "next_cursor": cursor,
            **fanout.meta(answers, unowned)}})


@app.page("/_local/views/{view}")
class LocalList(View):
    async def get(self, request: Request, view: str) -> Response:
        """Internal: this worker's pages of a list query for the partitions named."""
        try:
            listed = _listed(view)
        except LookupError as exc:
            return self.error(404, str(exc))
        try:
            query, want, timeout = _request(listed, request, ("partitions",))
            partitions = fanout.partitions(request.query.get("partitions", ""))
        except (BadList, BadRequest) as exc:
            return self.error(400, str(exc))
        return self.json(await _here(listed, query, want, timeout, partitions))
