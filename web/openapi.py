"""GET /openapi.json: the HTTP API as an OpenAPI 3.1 document, built from the project's models."""

from functools import cache
from typing import Any, Literal

from faust.web import Request, Response, View
from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

from streams.app import app
from streams.commands import PUBLIC
from streams.envelopes import Command
from tables.listing import MAX_LIMIT, MAX_NUMBER, MAX_TEXT, Filter
from tables.registry import VIEWS
from web import answers
from web.inputs import MAX_KEY_LENGTH
from web.queries import MAX_PAGE
from web.rankings import DEFAULT_TOP, MOST_TOP
from web.views import MAX_VERSION, MAX_WAIT

JSON = dict[str, Any]


def _command(name: str) -> type[BaseModel]:
    return create_model(f"{name}Command", __base__=Command, type=(Literal[name], ...),
                        payload=(PUBLIC[name], ...))


def _components() -> tuple[JSON, JSON]:
    """Component schemas, and the request body's: one of the commands, told apart by `type`."""
    commands = {name: _command(name) for name in PUBLIC}
    replies: list[type[BaseModel]] = [
        answers.Error, answers.InvalidCommand, answers.Submitted, answers.Outcome,
        answers.Health, answers.Ready, answers.LagReport, answers.Redirect,
        *(model for pair in answers.ROWS.values() for model in pair),
        *answers.LISTS.values(), *answers.TOPS.values()]
    _, document = models_json_schema(
        [(model, "validation") for model in commands.values()]
        + [(model, "serialization") for model in replies],
        ref_template="#/components/schemas/{model}")
    body = {"oneOf": [_ref(model.__name__) for model in commands.values()],
            "discriminator": {"propertyName": "type", "mapping": {
                name: f"#/components/schemas/{model.__name__}"
                for name, model in commands.items()}}}
    return document["$defs"], body


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: JSON) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> JSON:
    return _json(description, _ref("Error"))


def _query(name: str, schema: JSON, description: str) -> JSON:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _wait(name: str, description: str) -> JSON:
    return _query(name, {"type": "number", "minimum": 0, "maximum": MAX_WAIT}, description)


KEY = {"name": "key", "in": "path", "required": True,
       "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
       "description": "the row's key: an order id, sku or customer id (UTF-8)"}
ROUTED = {"503": _error("partitions are being assigned, or the key's owner did not answer")}


def _view_paths(name: str) -> JSON:
    view = VIEWS[name]
    data, meta = answers.ROWS[name]
    parameters = [KEY, _query("token", {"type": "string"}, "a command's consistency token: "
                              "wait until the row reflects it"),
                  _wait("timeout", "seconds to wait for `token` or `min_version`")]
    if view.by_aggregate:
        parameters.append(_query("min_version", {"type": "integer", "minimum": 0,
                                                 "maximum": MAX_VERSION},
                                 "wait until the row reflects this version of the aggregate"))
    if view.paged:
        parameters += [_query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                              "page size"),
                       _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9},
                              "items to skip")]
    if view.window:
        parameters += [_query("from", {"type": "string", "format": "date-time"},
                              "start of the time range (default: 24 hours before `to`)"),
                       _query("to", {"type": "string", "format": "date-time"},
                              "end of the time range, exclusive (default: now)")]
    answer = {"type": "object", "additionalProperties": False, "required": ["data", "meta"],
              "properties": {"data": _ref(data.__name__), "meta": _ref(meta.__name__)}}
    paths = {f"/views/{name}/{{key}}": {"get": {
        "summary": f"a row of the {name} view, from whichever worker holds it",
        "parameters": parameters,
        "responses": {"200": _json("the row", answer),
                      "400": _error("a bad key or query parameter"),
                      "404": _error("no such row (the error carries the meta fields too)"),
                      **ROUTED}}}}
    if not view.window:
        paths[f"/views/{name}/{{key}}/events"] = {"get": {
            "summary": f"Server-Sent Events: the {name} row, then each new version",
            "parameters": [KEY, {"name": "Last-Event-ID", "in": "header", "required": False,
                                 "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "an endless event stream",
                                  "content": {"text/event-stream": {"schema": {
                                      "type": "string"}}}},
                          "307": _json("the key's owner serves the stream", _ref("Redirect")),
                          "400": _error("a bad key or Last-Event-ID"), **ROUTED}}}
    return paths


def _filter(found: Filter) -> JSON:
    schema: JSON = ({"type": "integer", "minimum": -MAX_NUMBER, "maximum": MAX_NUMBER}
                    if found.kind is int else {"type": "string", "minLength": 1,
                                               "maxLength": MAX_TEXT})
    if found.choices:
        schema = {"type": "string", "enum": list(found.choices)}
    return _query(found.name, schema, found.description)


def _list_path(name: str) -> JSON:
    listing = VIEWS[name].listing
    assert listing is not None
    parameters = [*(_filter(f) for f in listing.filters),
                  _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                         "page size"),
                  _query("cursor", {"type": "string"}, "the `next_cursor` of the page before"),
                  _query("token", {"type": "string"}, "a command's consistency token: every "
                         "partition waits until it reflects it"),
                  _wait("timeout", "seconds to wait for `token`")]
    return {f"/views/{name}": {"get": {
        "summary": f"the rows of the {name} view that match, in key order, from every worker",
        "parameters": parameters,
        "responses": {"200": _json("a page; `meta.partial` says if partitions are missing",
                                   _ref(answers.LISTS[name].__name__)),
                      "400": _error("a bad query parameter or cursor")}}}}


def _top_path(name: str) -> JSON:
    ranking = VIEWS[name].ranking
    assert ranking is not None
    parameters = [
        _query("from", {"type": "string", "format": "date-time"},
               "start of the time range (default: 24 hours before `to`)"),
        _query("to", {"type": "string", "format": "date-time"},
               "end of the time range, exclusive (default: now)"),
        _query("n", {"type": "integer", "minimum": 1, "maximum": MOST_TOP},
               f"how many {ranking.key}s (default {DEFAULT_TOP})"),
        _query("token", {"type": "string"}, "a command's consistency token: every partition "
               "waits until it reflects it"),
        _wait("timeout", "seconds to wait for `token`")]
    return {f"/views/{name}/top": {"get": {
        "summary": f"the {ranking.key}s with the most {ranking.by} in a time range, summed "
                   f"over the {name} windows from every worker (this fixed path wins over a "
                   f"{ranking.key} named `top`)",
        "parameters": parameters,
        "responses": {"200": _json("the top, highest first; `meta.partial` says if partitions "
                                   "are missing", _ref(answers.TOPS[name].__name__)),
                      "400": _error("a bad query parameter")}}}}


def _command_paths(body: JSON) -> JSON:
    outcome = "the result: 200 accepted, 409 rejected; its token reads the write back"
    return {
        "/commands": {"post": {
            "summary": "submit a command and wait (bounded) for its result",
            "parameters": [_query("wait", {"type": "boolean"}, "wait for the result (default)"),
                           _wait("timeout", "seconds to wait for the result")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": _json(outcome, _ref("Outcome")),
                          "409": _json(outcome, _ref("Outcome")),
                          "202": _json("produced; no result yet", _ref("Submitted")),
                          "400": _error("not JSON, or a bad query parameter"),
                          "403": _error("an internal command: only the reservation saga "
                                        "may issue it"),
                          "408": _error("the body did not arrive in time"),
                          "413": _error("over SHOPSTREAM_MAX_BODY bytes"),
                          "415": _error("not application/json"),
                          "422": _json("JSON, but not a valid command", _ref("InvalidCommand")),
                          **ROUTED}}},
        "/commands/{command_id}": {"get": {
            "summary": "a command's result",
            "parameters": [{"name": "command_id", "in": "path", "required": True,
                            "schema": {"type": "string", "format": "uuid"}},
                           _wait("wait", "seconds to wait for the result to exist")],
            "responses": {"200": _json(outcome, _ref("Outcome")),
                          "409": _json(outcome, _ref("Outcome")),
                          "400": _error("not a UUID, or a bad wait"),
                          "404": _error("no result yet"), **ROUTED}}},
    }


def _plain_paths() -> JSON:
    text = {"type": "string"}
    return {
        "/health": {"get": {"summary": "alive; degraded once dead letters are parked",
                            "responses": {"200": _json("alive", _ref("Health"))}}},
        "/ready": {"get": {"summary": "partitions assigned and tables recovered",
                           "responses": {"200": _json("ready", _ref("Ready")),
                                         "503": _json("not yet", _ref("Ready"))}}},
        "/lag": {"get": {"summary": "how far each projection this worker holds is behind",
                         "responses": {"200": _json("lag and latency", _ref("LagReport"))}}},
        "/metrics": {"get": {"summary": "Prometheus text", "responses": {"200": {
            "description": "metrics", "content": {"text/plain": {"schema": text}}}}}},
        "/cluster": {"get": {
            "summary": "every worker's part (GET /cluster/local) merged, and the dead letters "
                       "waiting, newest first, without their bodies",
            "parameters": [{"name": "letters", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 0, "maximum": 500}}],
            "responses": {"200": _json("the group", {"type": "object"}),
                          "400": _json("a bad parameter", _ref("Error"))}}},
        "/cluster/local": {"get": {"summary": "this worker's partitions, lag, rows, counters",
                                   "responses": {"200": _json("this worker", {"type": "object"})}}},
        "/dashboard": {"get": {"summary": "the operator's console (HTML)", "responses": {"200": {
            "description": "the page", "content": {"text/html": {"schema": text}}}}}},
        "/openapi.json": {"get": {"summary": "this document", "responses": {
            "200": _json("OpenAPI 3.1", {"type": "object"})}}},
    }


ADMIN = [{"adminToken": []}]
REFUSED = {"401": _error("no `Authorization: Bearer` token"),
           "403": _error("the admin token is wrong"),
           "404": _error("admin operations are off: no SHOPSTREAM_ADMIN_TOKEN is set")}
IDS = {"required": False, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"ids": {"type": "array", "items": {
        "type": "string", "format": "uuid"}}}}}},
    "description": "the dead letters to resolve; no body or no `ids`: every waiting one"}


def _admin_paths() -> JSON:
    anything = {"type": "object"}
    resolving = {"200": _json("the ids resolved", anything),
                 "400": _error("the body is not JSON"), "422": _error("invalid body"),
                 **REFUSED, "404": _error("an unknown dead letter, or admin operations are off")}
    return {
        "/admin/views": {"get": {
            "summary": "every view version's state (live, resident, building, ready, retired, "
                       "declared) and per partition its folded offset against the log end",
            "responses": {"200": _json("the versions", anything)}}},
        "/admin/views/local": {"get": {
            "summary": "what this worker serves and builds, and its last switches",
            "responses": {"200": _json("this worker", anything)}}},
        "/admin/views/{view}/{action}": {"post": {
            "summary": "rebuild a version from the log, switch the live version (switch back "
                       "to roll back), or retire a version",
            "security": ADMIN,
            "parameters": [
                {"name": "view", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "action", "in": "path", "required": True,
                 "schema": {"enum": ["rebuild", "switch", "retire"]}},
                _query("version", {"type": "integer", "minimum": 1},
                       "the version (default: the newest declared)"),
                _query("force", {"type": "boolean"}, "switch: even to a version not caught up"),
                _wait("wait", "switch: seconds to wait for the version to catch up")],
            "responses": {"200": _json("done", anything), "400": _error("a bad parameter"),
                          "409": _error("refused, with the reason"), **REFUSED,
                          "404": _error("no such view, version or action, or admin "
                                        "operations are off")}}},
        "/admin/dead-letters": {"get": {
            "summary": "the dead letters waiting (`all=true`: resolved ones too)",
            "security": ADMIN,
            "parameters": [_query("all", {"type": "boolean"}, "resolved ones too")],
            "responses": {"200": _json("the dead letters", anything),
                          "400": _error("a bad parameter"), **REFUSED}}},
        "/admin/dead-letters/replay": {"post": {
            "summary": "re-submit dead letters to the topics they came from",
            "security": ADMIN, "requestBody": IDS, "responses": resolving}},
        "/admin/dead-letters/discard": {"post": {
            "summary": "give dead letters up: they stop waiting",
            "security": ADMIN, "requestBody": IDS, "responses": resolving}},
    }


@cache
def document() -> JSON:
    schemas, body = _components()
    paths = {**_command_paths(body), **_plain_paths(), **_admin_paths()}
    for name in VIEWS:
        paths |= _view_paths(name)
    for name in answers.LISTS:
        paths |= _list_path(name)
    for name in answers.TOPS:
        paths |= _top_path(name)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shopstream", "version": "1",
                 "description": "Orders and inventory, CQRS and event sourcing on Faust and "
                                "Kafka. Any worker answers any request. Every error is JSON "
                                "with an `error` message."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"adminToken": {
            "type": "http", "scheme": "bearer",
            "description": "SHOPSTREAM_ADMIN_TOKEN; admin operations are off without it"}}},
    }


@app.page("/openapi.json")
class OpenAPI(View):
    async def get(self, request: Request) -> Response:
        return self.json(document())
