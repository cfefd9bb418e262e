"""The OpenAPI document every worker serves: it describes real answers, and fuzzing it with
schemathesis finds no 5xx, no undocumented status and no answer off its schema."""

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tables.registry import VIEWS
from tests.integration.cluster import Kafka, Worker, get_json, wait_until_all_ready

pytestmark = pytest.mark.integration

# Not positive_data_acceptance: a token is any string to the schema but only the service's
# own are accepted, and `from` must precede `to`; neither can be said in OpenAPI.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, unsupported_method]
SHORT_WAIT = 0.1
EXAMPLES = 50  # per operation and mode


@pytest.fixture(scope="module")
async def fuzzed(kafka: Kafka, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    """A worker of its own, on a topic prefix of its own: the fuzzer's random commands must not
    land in the state the other tests verify."""
    worker = Worker(name="fuzzed", bootstrap=kafka.bootstrap, prefix=f"fuzz-{uuid4().hex[:8]}",
                    data_dir=tmp_path_factory.mktemp("fuzzed") / "worker")
    worker.start()
    try:
        await wait_until_all_ready([worker])
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed: Worker) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    schema = schema.exclude(path_regex="/events$")  # an SSE stream answers for ever
    schema.hook(map_query)
    return schema


def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """Any wait the fuzzer asks for becomes SHORT_WAIT, so no example blocks for seconds; a
    value the API refuses is left as it is."""
    if query is None:
        return None
    for name in ("timeout", "wait"):
        try:
            seconds = float(query[name])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 < seconds <= 30 and not isinstance(query[name], bool):
            query[name] = SHORT_WAIT
    if ("token" in query or "min_version" in query) and "timeout" not in query:
        query["timeout"] = SHORT_WAIT
    return query


async def test_every_worker_serves_the_document(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    documents = [(await get_json(http, f"{worker.url}/openapi.json")) for worker in workers]
    assert documents[0] == documents[1]
    status, document = documents[0]
    assert status == 200 and document["openapi"].startswith("3.1")
    for name in VIEWS:
        assert f"/views/{name}/{{key}}" in document["paths"]
        assert (f"/views/{name}" in document["paths"]) == (VIEWS[name].listing is not None)
    assert {"/commands", "/commands/{command_id}", "/health", "/ready", "/lag",
            "/metrics"} <= document["paths"].keys()
    admin = {path: methods for path, methods in document["paths"].items()
             if path.startswith("/admin/")}
    assert admin.keys() == {"/admin/views", "/admin/views/local", "/admin/views/{view}/{action}",
                            "/admin/dead-letters", "/admin/dead-letters/replay",
                            "/admin/dead-letters/discard"}
    for path, methods in admin.items():
        for method, operation in methods.items():
            changes = method == "post" or path == "/admin/dead-letters"
            assert ("security" in operation) == changes, (method, path)


def test_real_answers_conform(api_schema: Any) -> None:
    """Rows that exist, in every view, validated against the document as served."""
    sku, order, customer = f"sku-{uuid4().hex[:8]}", f"order-{uuid4().hex[:8]}", uuid4().hex
    submit = api_schema["/commands"]["POST"]
    for kind, aggregate_id, payload in [
        ("RegisterProduct", sku, {"name": "Lamp", "price": "12.50", "stock": 5}),
        ("PlaceOrder", order, {"customer_id": customer, "lines": [{"sku": sku, "quantity": 2}]}),
    ]:
        body = {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate_id,
                "payload": payload}
        case = submit.Case(body=body, media_type="application/json", query={"timeout": 30})
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == 200, response.text
    token = response.json()["token"]
    for path, key, query in [("/views/products/{key}", sku, {}),
                             ("/views/orders/{key}", order, {"token": token, "timeout": 10}),
                             ("/views/customer-orders/{key}", customer,
                              {"token": token, "timeout": 10, "limit": 1}),
                             ("/views/sales/{key}", sku, {}),
                             ("/views/orders/{key}", "no-such-order", {})]:
        case = api_schema[path]["GET"].Case(path_parameters={"key": key}, query=query)
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == (404 if key == "no-such-order" else 200), response.text
    for path, query in [("/views/orders", {"customer_id": customer,
                                           "token": token, "timeout": 10}),
                        ("/views/orders", {"limit": 1}),
                        ("/views/products", {"available_below": 6})]:
        response = api_schema[path]["GET"].Case(query=query).call_and_validate(checks=CHECKS)
        assert response.status_code == 200 and response.json()["data"], response.text
    for path in ["/health", "/ready", "/lag", "/metrics", "/openapi.json"]:
        api_schema[path]["GET"].Case().call_and_validate(checks=CHECKS)


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_fuzzing_finds_no_server_error_and_nothing_undocumented(
    api_schema: Any, mode: GenerationMode,
) -> None:
    for result in api_schema.get_all_operations():
        operation = result.ok()
        raw = operation.definition.raw
        if mode is GenerationMode.NEGATIVE and not (raw.get("parameters")
                                                    or raw.get("requestBody")):
            continue  # nothing to get wrong

        @given(case=operation.as_strategy(mode, hooks=api_schema.hooks))
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            call()
        except Exception as exc:
            exc.add_note(f"{mode} fuzzing of {operation.method.upper()} {operation.path}")
            raise


async def test_the_worker_answers_after_the_fuzzing(
    fuzzed: Worker, http: aiohttp.ClientSession,
) -> None:
    for worker in [fuzzed]:
        assert worker.alive(), worker.log_tail()
        status, health = await get_json(http, f"{worker.url}/health")
        # bad input over HTTP is refused before anything is produced: nothing was parked
        assert (status, health) == (200, {"status": "ok", "dead_letters": 0, "parked_here": 0})
