"""The console in a real browser (Debian's chromium through Playwright) against two real workers:
its numbers move with the load and agree with /lag and /metrics, a key lookup follows its row,
a poison command shows up as a dead letter."""

import asyncio
import json
import os
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, async_playwright
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.cluster import ROOT, Kafka, Worker, get_json

pytestmark = pytest.mark.integration

CHROMIUM = Path(os.environ.get("SHOPSTREAM_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
LAPTOP = {"width": 1366, "height": 900}
SETTLE = 60.0
POLL = 0.25


async def eventually(check: Callable[[], Awaitable[Any]], what: str,
                     timeout: float = SETTLE) -> Any:
    """Until `check` returns something true; that value. Fails naming `what` and the last."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(POLL)
    raise AssertionError(f"{what}: not after {timeout} s (last: {last!r})")


def require_chromium() -> None:
    """In CI the browser must be there (.ci/run installs it); elsewhere its absence skips."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, workers: list[Worker],
               tmp_path: Path) -> AsyncIterator[Page]:
    opened = await browser.new_page(viewport=LAPTOP)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    await opened.goto(f"{workers[0].url}/")
    assert opened.url.endswith("/dashboard")
    yield opened
    await save_screenshot(opened, tmp_path)
    await opened.close()
    assert not errors, errors


async def save_screenshot(page: Page, tmp_path: Path) -> None:
    """After the next refresh, so that every figure (rates too) is current."""
    status = await page.locator("#status").inner_text()
    await eventually(lambda: _changed(page, status), "the page refreshed", timeout=15)
    shot = tmp_path / "dashboard.png"
    await page.screenshot(path=str(shot), full_page=True)
    wanted = os.environ.get("SHOPSTREAM_SCREENSHOT")
    if os.environ.get("CI") == "true" and not wanted:
        wanted = str(ROOT / "test-artifacts" / "dashboard.png")
    if wanted:
        Path(wanted).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, wanted)
        print(f"dashboard screenshot: {wanted}")


def number(text: str) -> float | None:
    """A figure as the page shows it; None for "unknown"."""
    text = text.strip()
    if text == "unknown":
        return None
    match = re.match(r"-?[\d,]+(\.\d+)?", text)
    assert match, f"not a figure: {text!r}"
    return float(match.group(0).replace(",", ""))


async def shown(page: Page, selector: str) -> float | None:
    return number(await page.locator(selector).inner_text())


async def metric_sum(http: aiohttp.ClientSession, workers: list[Worker], sample: str,
                     **labels: str) -> float:
    total = 0.0
    for worker in workers:
        async with http.get(f"{worker.url}/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for found in family.samples:
                if found.name == sample and all(found.labels.get(k) == v
                                                for k, v in labels.items()):
                    total += found.value
    return total


async def post(http: aiohttp.ClientSession, worker: Worker, kind: str, aggregate_id: str,
               payload: dict[str, Any]) -> dict[str, Any]:
    """Send a command, again while Kafka answers 503 (a young topic's leader moving)."""
    body = {"command_id": str(uuid4()), "type": kind, "aggregate_id": aggregate_id,
            "payload": payload}

    async def answered() -> dict[str, Any] | None:
        async with http.post(f"{worker.url}/commands", json=body) as response:
            answer: dict[str, Any] = await response.json()
            if response.status == 503:
                return None
            assert response.status in (200, 409), answer
            return answer
    result: dict[str, Any] = await eventually(answered, f"{kind} {aggregate_id} taken")
    return result


async def place_orders(http: aiohttp.ClientSession, workers: list[Worker], count: int) -> str:
    sku = f"sku-{uuid4().hex[:8]}"
    await post(http, workers[0], "RegisterProduct", sku,
               {"name": "Console", "price": "2.00", "stock": count})
    for n in range(count):
        await post(http, workers[n % 2], "PlaceOrder", f"order-{uuid4().hex[:10]}",
                   {"customer_id": f"cust-{n % 3}", "lines": [{"sku": sku, "quantity": 1}]})
    return sku


async def test_the_numbers_move_with_the_load_and_agree_with_lag_and_metrics(
    page: Page, workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    await eventually(page.locator("#workers tbody tr").count, "workers listed")
    rows = page.locator("#workers tbody tr")
    assert await rows.count() == 2
    for worker in workers:
        row = page.locator(f'#workers tbody tr[data-worker="{worker.url}"]')
        await eventually(lambda row=row: _contains(row, "ready"), f"{worker.name} ready")
    await eventually(lambda: _known(page, "#commands-accepted"), "a command count")
    before = await shown(page, "#commands-accepted")
    assert before is not None

    async def rate_seen() -> float | None:
        await place_orders(http, workers, 4)
        rate = await shown(page, "#commands-rate")
        return rate if rate else None
    assert await eventually(rate_seen, "commands/s above zero while commands arrive") > 0

    async def accepted_agrees() -> bool:
        on_page = await shown(page, "#commands-accepted")
        in_metrics = await metric_sum(http, workers, "shopstream_commands_total",
                                      status="accepted")
        return on_page is not None and on_page == in_metrics and on_page > before
    await eventually(accepted_agrees, "accepted commands on the page == /metrics, and grown")

    async def applied_agrees() -> bool:
        on_page = await shown(page, '#views tr[data-view="orders"] [data-field="applied"]')
        in_metrics = await metric_sum(http, workers,
                                      "shopstream_view_applied_latency_seconds_count",
                                      view="orders")
        return on_page is not None and on_page == in_metrics
    await eventually(applied_agrees, "records applied to orders on the page == /metrics")
    p99 = await shown(page, '#views tr[data-view="orders"] [data-field="p99"]')
    assert p99 is not None and p99 > 0
    assert await shown(page, '#views tr[data-view="orders"] [data-field="rows"]')

    async def positions_agree() -> bool:
        expected: dict[tuple[str, str], Any] = {}
        for worker in workers:
            _, lag = await get_json(http, f"{worker.url}/lag")
            for partition, behind in lag["projections"]["orders"].items():
                expected[partition, worker.url] = (behind["applied"], behind["records"])
        found: dict[tuple[str, str], Any] = {}
        for row in await page.locator('#positions tr[data-view="orders"]').all():
            cells = await row.locator("td").all_text_contents()
            found[cells[1], cells[2]] = (number(cells[3]), number(cells[5]))
        known = {k: (None if a is None else float(a), None if r is None else float(r))
                 for k, (a, r) in expected.items()}
        return len(found) == 4 and found == known
    await eventually(positions_agree, "positions per partition on the page == /lag")


async def _changed(page: Page, status: str) -> bool:
    return await page.locator("#status").inner_text() != status


async def _known(page: Page, selector: str) -> bool:
    return (await page.locator(selector).inner_text()).strip() != "unknown"


async def _contains(locator: Any, text: str) -> bool:
    return text in await locator.inner_text()


async def test_a_poison_command_appears_as_a_dead_letter(
    page: Page, workers: list[Worker], producer: AIOKafkaProducer, prefix: str, kafka: Kafka,
) -> None:
    poison = b"\xff\xfe console poison " + uuid4().hex.encode()
    sent = await producer.send_and_wait(f"{prefix}.commands", poison, key=b"poison")
    origin = f"commands[{sent.partition}]@{sent.offset}"
    exactly = re.compile(f"^{re.escape(origin)}$")
    row = page.locator("#letters tbody tr").filter(
        has=page.locator('[data-field="origin"]', has_text=exactly))
    await eventually(row.count, f"a dead letter from {origin}")
    letter = await row.get_attribute("data-letter")
    assert letter is not None
    try:
        assert "unreadable command" in await row.inner_text()
        assert "console poison" not in await page.locator("body").inner_text()
        assert (await shown(page, "#letters-waiting") or 0) >= 1
    finally:  # the other dead-letter tests count what waits
        await discard(kafka, prefix, letter)
    await eventually(lambda: _gone(row), "the discarded letter off the page")


async def _gone(locator: Any) -> bool:
    return await locator.count() == 0


async def discard(kafka: Kafka, prefix: str, letter: str) -> None:
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams", "dlq", "discard", "--id", letter, "--quiet", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SHOPSTREAM_BROKER": f"kafka://{kafka.bootstrap}",
             "SHOPSTREAM_TOPIC_PREFIX": prefix})
    output = (await asyncio.wait_for(run.communicate(), 120))[0].decode()
    assert run.returncode == 0 and "discarded 1 dead letters" in output, output


async def test_a_key_lookup_shows_the_row_and_then_its_update(
    page: Page, workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    async def elsewhere() -> str | None:
        """A product whose owner is the other worker, so the live stream takes the 307."""
        sku = f"sku-{uuid4().hex[:8]}"
        await post(http, workers[0], "RegisterProduct", sku,
                   {"name": "Lookup", "price": "3.00", "stock": 10})
        _, row = await get_json(http, f"{workers[0].url}/views/products/{sku}?min_version=1")
        return sku if row["meta"]["served_by"].rstrip("/") == workers[1].url else None
    sku = await eventually(elsewhere, "a product owned by the second worker")
    await eventually(page.locator("#lookup-view option").count, "views to pick")
    await page.get_by_label("view", exact=True).select_option("products")
    await page.get_by_label("key", exact=True).fill(sku)
    await page.get_by_role("button", name="Look up and follow").click()
    await eventually(lambda: _contains(page.locator("#lookup-row"), '"available": 10'),
                     "the row")
    await eventually(lambda: _contains(page.locator("#lookup-status"), "following"),
                     "the live stream open")
    await post(http, workers[1], "Restock", sku, {"quantity": 5})
    await eventually(lambda: _contains(page.locator("#lookup-row"), '"available": 15'),
                     "the row's update")
    assert await page.locator("#lookup-updates li").count() >= 1


async def test_every_series_the_grafana_dashboard_asks_for_is_served(
    workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "shopstream.json").read_text())
    asked = {name for panel in dashboard["panels"] for target in panel.get("targets", [])
             for name in re.findall(r"\b(?:shopstream|faust)_[a-z_]+", target["expr"])}
    async with http.get(f"{workers[0].url}/metrics") as response:
        families = list(text_string_to_metric_families(await response.text()))
    served = {sample.name for family in families for sample in family.samples}
    for family in families:  # a labelled family may have no sample yet; its series are known
        served |= {family.name + suffix for suffix in SERIES.get(family.type, ())}
    assert asked and asked <= served, asked - served


async def test_a_silent_worker_is_flagged_and_its_share_is_unknown_not_zero(
    browser: Browser, workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    """The group's real answer, with the second worker's part replaced by what /cluster says
    of a worker that did not answer."""
    _, cluster = await get_json(http, f"{workers[0].url}/cluster")
    silent = {"worker": workers[1].url, "answered": False,
              "error": "did not answer: ServerDisconnectedError"}
    cluster["workers"] = [part if part["worker"] != workers[1].url else silent
                          for part in cluster["workers"]]
    opened = await browser.new_page(viewport=LAPTOP)
    await opened.route("**/cluster", lambda route: route.fulfill(json=cluster))
    try:
        await opened.goto(f"{workers[0].url}/dashboard")
        row = opened.locator(f'#workers tbody tr[data-worker="{workers[1].url}"]')
        await eventually(lambda: _contains(row, "did not answer"), "the silent worker flagged")
        for tile in ("#commands-accepted", "#commands-rejected", "#commands-rate"):
            assert await opened.locator(tile).inner_text() == "unknown", tile
        orders = opened.locator('#views tr[data-view="orders"]')
        assert await orders.locator('[data-field="applied"]').inner_text() == "unknown"
        assert await orders.locator('[data-field="lag-records"]').inner_text() == "unknown"
        assert "(partial)" in await orders.locator('[data-field="rows"]').inner_text()
        assert "1 not answering" in await opened.locator("#status").inner_text()
    finally:
        await opened.close()


async def versions_shown(page: Page) -> dict[tuple[str, int], dict[str, str]]:
    """Each version row of the page: its state and figures as shown."""
    found = {}
    for row in await page.locator("#versions tbody tr").all():
        view = await row.get_attribute("data-view")
        version = await row.get_attribute("data-version")
        assert view is not None and version is not None
        found[view, int(version)] = {
            field: (await row.locator(f'[data-field="{field}"]').inner_text()).strip()
            for field in ("state", "position", "behind", "partitions")}
    return found


def as_reported(entry: dict[str, Any]) -> dict[str, str]:
    """What the page should show for one version of GET /admin/views."""
    parts = entry.get("partitions")
    if parts is None:
        return {"state": entry["state"], "position": "unknown", "behind": "unknown",
                "partitions": "unknown"}
    return {"state": entry["state"],
            "position": f"{sum(p['folded'] for p in parts):,} / {sum(p['end'] for p in parts):,}",
            "behind": f"{sum(p['behind'] for p in parts):,}",
            "partitions": "\n".join(f"{p['partition']}: {p['folded']:,}/{p['end']:,}"
                                    for p in parts)}


async def test_the_page_shows_every_view_version_as_the_admin_views_endpoint_reports_it(
    page: Page, workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    sku = f"sku-{uuid4().hex[:8]}"
    body = {"command_id": str(uuid4()), "type": "RegisterProduct", "aggregate_id": sku,
            "payload": {"name": "Versions", "price": "1.00", "stock": 1}}
    async with http.post(f"{workers[0].url}/commands", json=body) as response:
        assert response.status in (200, 202), await response.text()  # 202: taken, still running

    async def agree() -> dict[tuple[str, int], dict[str, str]] | None:
        _, answer = await get_json(http, f"{workers[0].url}/admin/views")
        expected = {(v["view"], v["version"]): as_reported(v) for v in answer["versions"]}
        logged = [v for v in answer["versions"] if v["view"] == "products" and v.get("partitions")
                  and sum(p["end"] for p in v["partitions"]) > 0]
        shown_now = await versions_shown(page)
        return shown_now if shown_now == expected and logged else None
    # both sides move while the views fold; they agree once the log is still
    agreed = await eventually(agree, "the versions on the page == GET /admin/views", timeout=120)
    views = {view for view, _ in agreed}
    assert sorted(view for (view, _), figures in agreed.items()
                  if figures["state"] == "live") == sorted(views)


async def test_building_ready_and_retired_versions_are_shown_and_unread_positions_are_unknown(
    browser: Browser, workers: list[Worker], http: aiohttp.ClientSession,
) -> None:
    """The real answer of GET /admin/views, with versions recast in the states a rebuild
    passes through (the rebuild itself is tests/integration/test_evolution.py's)."""
    _, answer = await get_json(http, f"{workers[0].url}/admin/views")
    live = next(v for v in answer["versions"] if v["state"] == "live" and v.get("partitions"))
    behind = [{**p, "folded": p["end"] // 2, "behind": p["end"] - p["end"] // 2}
              for p in live["partitions"]]
    answer["versions"] = [
        live,
        {**live, "version": 7, "state": "building", "partitions": behind, "caught_up": False},
        {**live, "version": 8, "state": "ready", "caught_up": True},
        {"view": live["view"], "version": 9, "state": "retired", "resident": False,
         "new_fields": []},
    ]
    opened = await browser.new_page(viewport=LAPTOP)
    await opened.route("**/admin/views", lambda route: route.fulfill(json=answer))
    try:
        await opened.goto(f"{workers[0].url}/dashboard")
        await eventually(lambda: opened.locator("#versions tbody tr").count(), "versions listed")
        shown_now = await versions_shown(opened)
        assert shown_now == {(v["view"], v["version"]): as_reported(v)
                             for v in answer["versions"]}
        assert [figures["state"] for figures in shown_now.values()] == [
            "live", "building", "ready", "retired"]
        assert shown_now[live["view"], 9]["position"] == "unknown"
    finally:
        await opened.close()
