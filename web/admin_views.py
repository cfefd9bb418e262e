"""View versions over HTTP: GET /admin/views (every version's state and positions, from
Kafka), GET /admin/views/local (what this worker serves and builds), rebuild / switch /
retire behind the admin token, and the versions' figures in /metrics."""

from collections.abc import Iterator
from typing import Any

from faust.web import Request, Response, View
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from agents import view_admin
from agents.builders import BUILDERS
from agents.view_aliases import SWITCHES
from streams.app import app
from tables.catalog import catalog
from tables.progress import progress
from tables.registry import VERSIONS
from web.admin import refusal
from web.monitoring import REGISTRY
from web.queries import BadQuery, flag, integer, seconds

ACTIONS = ("rebuild", "switch", "retire")


def local() -> dict[str, Any]:
    return {
        "live_here": {name: catalog.live_version(name) for name in VERSIONS},
        "built_here": {builder.view.table_name: {
            "partitions": sorted(builder.ready), "folded": builder.folded,
            "folded_apart": builder.folded_apart,
            "apart": {"pid": builder.apart.process.pid,
                      "partitions": sorted(builder.apart.partitions)} if builder.apart else None,
            "unfoldable": builder.unfoldable,
            "applied": {str(p): progress.applied.get((builder.view.table_name, p))
                        for p in sorted(builder.ready)},
            **({} if builder.view.by_aggregate else {"reached": {
                str(p): {str(source): offset for source, offset in progress.sources.get(
                    (builder.view.table_name, p), {}).items()}
                for p in sorted(builder.ready)}}),
        } for builder in BUILDERS.values()},
        "catalog_loaded": catalog.loaded,
        "switches": [{"view": view, "version": version, "seconds": round(took, 4)}
                     for view, version, took in SWITCHES],
        "served_by": str(app.conf.canonical_url),
    }


@app.page("/admin/views")
class Versions(View):
    async def get(self, request: Request) -> Response:
        return self.json({"versions": await view_admin.status(await view_admin.read_catalog()),
                          **local()})


@app.page("/admin/views/local")
class LocalVersions(View):
    async def get(self, request: Request) -> Response:
        return self.json(local())


@app.page("/admin/views/{view}/{action}")
class VersionAction(View):
    async def post(self, request: Request, view: str, action: str) -> Response:
        refused = refusal(self, request)
        if refused is not None:
            return refused
        if action not in ACTIONS:
            return self.error(404, f"no action {action!r}; actions: {', '.join(ACTIONS)}")
        try:
            number = integer(request.query, "version", -1, 1, 10**6)
            if number == -1:
                number = view_admin.newest(view)
            chosen = view_admin.version_of(view, number)
            if action == "rebuild":
                said = await view_admin.rebuild(chosen)
            elif action == "switch":
                said = await view_admin.switch(chosen, flag(request.query, "force", False),
                                               seconds(request.query, "wait", 10.0, 60.0))
            else:
                said = await view_admin.retire(chosen)
        except BadQuery as exc:
            return self.error(400, str(exc))
        except view_admin.Refused as exc:
            return self.error(409, str(exc))
        return self.json({"view": view, "version": number, "done": said})


class VersionFigures:
    """shopstream_view_live_version, and per version built here its folded records and the
    last event-log offset it folded per partition."""

    def collect(self) -> Iterator[Metric]:
        live = GaugeMetricFamily("shopstream_view_live_version",
                                 "The version of the view serving reads on this worker",
                                 labels=["view"])
        for name in VERSIONS:
            live.add_metric([name], catalog.live_version(name))
        yield live
        folded = GaugeMetricFamily("shopstream_view_version_folded_records",
                                   "Event-log records a version built here has folded since "
                                   "this worker started", labels=["version"])
        applied = GaugeMetricFamily("shopstream_view_version_applied_offset",
                                    "The last event-log offset a version built here folded",
                                    labels=["version", "partition"])
        for builder in BUILDERS.values():
            folded.add_metric([builder.view.table_name], builder.folded)
            for partition in sorted(builder.ready):
                offset = progress.applied.get((builder.view.table_name, partition))
                if offset is not None:
                    applied.add_metric([builder.view.table_name, str(partition)], offset)
        yield folded
        yield applied


REGISTRY.register(VersionFigures())
