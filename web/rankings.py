"""Top-N over a windowed view: GET /views/{name}/top sums each key's windows in a time range
on the owners of every partition (/_local/views/{name}/top), each from the version live
there, and ranks the union.

A fixed path wins over a key: aiohttp resolves the most explicit path first, so
`/views/sales/top` is this route, never the row of a sku named "top".
"""

from functools import partial
from typing import Any

from faust.web import Request, Response, View

from agents.builders import live_view, live_windows_between
from streams.app import app
from tables.listing import Ranking, ranked, totals
from tables.registry import VIEWS
from tables.view import View as ReadView
from web import consistency, fanout
from web.fanout import BadRequest
from web.queries import BadQuery, integer, window_starts

DEFAULT_TOP, MOST_TOP = 10, 100
PARAMETERS = {"from", "to", "n", "token", "timeout"}


def _request(view: ReadView, request: Request, extra: frozenset[str] = frozenset()
             ) -> tuple[dict[str, Any], consistency.Wanted, float]:
    assert view.window is not None
    params = fanout.single(request)
    unknown = sorted(set(params) - PARAMETERS - extra)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r}; top takes "
                         f"{', '.join(sorted(PARAMETERS))}")
    try:
        n = integer(request.query, "n", DEFAULT_TOP, 1, MOST_TOP)
        starts, begin, end = window_starts(request.query, view.window)
    except BadQuery as exc:
        raise BadRequest(str(exc)) from None
    first = starts[0] if starts else end.timestamp()
    asked = {"n": n, "first": first, "end": end.timestamp(), "from": begin, "to": end}
    want, timeout = fanout.wanted(request)
    return asked, want, timeout


def _top(view: ReadView, ranking: Ranking, asked: dict[str, Any],
         partition: int) -> dict[str, Any]:
    try:
        rows = live_windows_between(view, partition, asked["first"], asked["end"])
    except LookupError:
        return {"rows": [], "not_here": True}
    return {"rows": totals(rows, ranking)[:asked["n"]]}


async def _here(view: ReadView, asked: dict[str, Any], want: consistency.Wanted, timeout: float,
                partitions: list[int]) -> fanout.Answer:
    """From the version live on this worker; a partition it cannot read from that version
    yet (a built one restoring) is missing."""
    assert view.ranking is not None
    live = live_view(view.name)
    answer = await fanout.local(live, partitions, want, timeout,
                                partial(_top, live, view.ranking, asked))
    for partition, page in list(answer["pages"].items()):
        if page.pop("not_here", False):
            del answer["pages"][partition]
            answer["missing"].append(int(partition))
    return {**answer, "view_version": live.version}


def _register(view: ReadView) -> None:
    ranking = view.ranking
    assert ranking is not None

    @app.page(f"/views/{view.name}/top", name=f"{view.name}-top")
    class Top(View):
        async def get(self, request: Request) -> Response:
            """The keys with the highest sum over the windows in [from, to), from all workers."""
            try:
                asked, want, timeout = _request(view, request)
            except BadRequest as exc:
                return self.error(400, str(exc))
            answers, unowned = await fanout.ask_all(
                view, request, f"/_local/views/{view.name}/top", timeout,
                partial(_here, view, asked, want, timeout))
            rows = [row for answer in answers for page in answer["pages"].values()
                    for row in page["rows"]]
            return self.json({"data": ranked(rows, ranking, asked["n"]), "meta": {
                "from": asked["from"].isoformat(), "to": asked["to"].isoformat(),
                "n": asked["n"], "window_seconds": view.window,
                **fanout.meta(answers, unowned),
                "view_versions": sorted({a["view_version"] for a in answers
                                         if "view_version" in a})}})

    @app.page(f"/_local/views/{view.name}/top", name=f"{view.name}-top-local")
    class LocalTop(View):
        async def get(self, request: Request) -> Response:
            """Internal: this worker's top rows for the partitions named."""
            try:
                asked, want, timeout = _request(view, request, frozenset({"partitions"}))
                partitions = fanout.partitions(request.query.get("partitions", ""))
            except BadRequest as exc:
                return self.error(400, str(exc))
            return self.json(await _here(view, asked, want, timeout, partitions))


for ranked_view in VIEWS.values():
    if ranked_view.ranking is not None:
        _register(ranked_view)
