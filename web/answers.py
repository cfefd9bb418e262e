"""The shapes of the HTTP answers, as pydantic models: they exist to generate /openapi.json."""

from datetime import datetime
from typing import Any, Literal, Union
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from streams.envelopes import CommandResult
from tables.registry import VERSIONS, VIEWS
from tables.view import View


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """Every 4xx and 5xx: `error` says what is wrong; some carry more fields alongside."""

    model_config = ConfigDict(extra="allow")
    error: str


class FieldError(Answer):
    field: str = Field(description="dotted location in the command, or `body`")
    message: str


class InvalidCommand(Answer):
    error: str
    details: list[FieldError]


class Submitted(Answer):
    command_id: UUID
    status: Literal["submitted"]


class Outcome(CommandResult):
    """A command's result, and the token that reads it back from any view."""

    token: str


class Lag(Answer):
    records: int | None
    seconds: float | None


Copy = Literal["active", "recovering", "standby", "rebalancing", "lapsed", "none"]


class Meta(Answer):
    stale: bool
    applied: dict[str, int] = Field(description="event-log partition -> last offset folded")
    lag: Lag
    served_by: str
    served_copy: Copy = Field(alias="copy", description="which copy of the row's partition "
                                                        "answered: only `active` is fresh")
    view_version: int = Field(description="the version of the view that answered (see "
                                          "/admin/views)")
    behind: dict[str, int] | None = Field(None, description="what a stale answer still lacks")


class RowMeta(Meta):
    version: int | None
    versions: dict[str, int]
    occurred_at: datetime


class PageMeta(RowMeta):
    limit: int
    offset: int
    total: int


class WindowMeta(Meta):
    model_config = ConfigDict(populate_by_name=True)
    start: datetime = Field(alias="from")
    to: datetime
    window_seconds: int


def _windows(view: View) -> type[BaseModel]:
    """A windowed view answers with its key and one row per window in the range."""
    return create_model(f"{view.row.__name__}Windows", __base__=Answer, key=(str, ...),
                        windows=(list[view.row], ...))


def _meta(view: View) -> type[Meta]:
    return WindowMeta if view.window else PageMeta if view.paged else RowMeta


def _rows(name: str) -> type[BaseModel]:
    """The row of whichever version serves the view (see meta.view_version), newest first."""
    rows = tuple(VERSIONS[name][number].row for number in sorted(VERSIONS[name], reverse=True))
    if len(rows) == 1:
        return rows[0]
    versions: type[BaseModel] = type(f"{rows[-1].__name__}Versions",
                                     (RootModel[Union[rows]],), {})  # type: ignore[misc]  # noqa: UP007
    return versions


ROWS: dict[str, tuple[type[BaseModel], type[Meta]]] = {
    name: (_windows(view) if view.window else _rows(name), _meta(view))
    for name, view in VIEWS.items()
}
"""Per view: its answer's data, and the meta that comes with it."""


class ListMeta(Answer):
    limit: int
    count: int = Field(description="rows on this page")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on "
                                                "the last")
    positions: dict[str, int] = Field(description="event-log partition -> last offset folded "
                                                  "into the rows answered (known once a "
                                                  "worker has folded since it started)")
    partial: bool = Field(description="true when some partitions did not answer: rows from "
                                      "them are missing")
    missing_partitions: list[int]
    stale: bool = Field(description="true when a partition did not reach `token` in time")
    behind: dict[str, int] | None = Field(None, description="what a stale answer still lacks")
    served_by: str


def _list(view: View) -> type[BaseModel]:
    return create_model(f"{view.row.__name__}List", __base__=Answer,
                        data=(list[view.row], ...), meta=(ListMeta, ...))


LISTS: dict[str, type[BaseModel]] = {
    name: _list(view) for name, view in VIEWS.items() if view.listing is not None}
"""Per view with a list query: its answer."""


class TopMeta(Answer):
    model_config = ConfigDict(populate_by_name=True)
    start: datetime = Field(alias="from")
    to: datetime
    n: int
    window_seconds: int
    positions: dict[str, int] = Field(description="event-log partition -> the offset every "
                                                  "partition answered has reached")
    partial: bool = Field(description="true when some partitions did not answer")
    missing_partitions: list[int]
    stale: bool
    behind: dict[str, int] | None = None
    served_by: str
    view_versions: list[int] = Field(description="the versions of the view that answered, "
                                                 "each worker's live one (two while a switch "
                                                 "reaches the workers)")


def _top(view: View) -> type[BaseModel]:
    assert view.ranking is not None
    fields: dict[str, Any] = {
        name: (view.row.model_fields[name].annotation, ...)
        for name in (view.ranking.key, *view.ranking.sums)}
    total = create_model(f"{view.row.__name__}Total", __base__=Answer, **fields)
    return create_model(f"{view.row.__name__}Top", __base__=Answer, data=(list[total], ...),
                        meta=(TopMeta, ...))


TOPS: dict[str, type[BaseModel]] = {
    name: _top(view) for name, view in VIEWS.items() if view.ranking is not None}
"""Per windowed view with a ranking: the answer of its top route."""


class Health(Answer):
    status: Literal["ok", "degraded"] = Field(
        description="degraded while any dead letter waits to be replayed or discarded")
    dead_letters: int = Field(description="dead letters waiting, parked by any worker")
    parked_here: int = Field(description="records this worker has parked since it started")


class Ready(Answer):
    ready: bool
    rebalancing: bool | None = None
    recovering: bool | None = None


class Behind(Answer):
    records: int | None
    seconds: float | None
    applied: int | None


class LagReport(Answer):
    worker: str
    projections: dict[str, dict[str, Behind]]
    latency_ms: dict[str, dict[str, float | None]]


class Redirect(Answer):
    location: str
