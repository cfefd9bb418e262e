"""The whole group at a glance: GET /cluster/local is this worker's part, GET /cluster asks every
worker for its part and merges them, flagging a worker that did not answer.

Every figure comes from web/monitoring.py, the same source as /lag and /metrics.
"""

import asyncio
import re
import time
from dataclasses import asdict
from typing import Any

import aiohttp
from faust.web import Request, Response, View

from agents import dead_letters
from agents.command_handler import decided
from agents.dead_letter_watch import LEDGER
from streams.app import app
from streams.dead_letters import DeadLetter
from tables.progress import progress
from tables.registry import VIEWS
from web import monitoring
from web.queries import BadQuery, integer

ASK_TIMEOUT = aiohttp.ClientTimeout(total=3)
LETTERS_SHOWN = 50
LETTERS_MOST = 500
# pydantic's messages quote the offending input; a dead letter's body stays off the page.
# Greedy: the input may itself hold ", input_type="; pydantic's own one comes last on the line.
QUOTED_INPUT = re.compile(r"input_value=(?:.*(?=, input_type=)|.*$)", re.MULTILINE)


def local_part() -> dict[str, Any]:
    """What this worker knows of itself, as /lag and /metrics say it."""
    now = time.time()
    lag = monitoring.projection_lag(now)
    latency = monitoring.APPLIED.summary()
    rows = monitoring.view_rows()
    recovered = app.tables.recovery.completed.is_set()
    return {
        "worker": str(app.conf.canonical_url),
        "at": now,
        "partitions": {"active": _by_topic(app.assignor.assigned_actives()),
                       "standby": _by_topic(app.assignor.assigned_standbys())},
        "state": {"rebalancing": bool(app.rebalancing), "recovering": bool(app.in_recovery),
                  "ready": recovered and not app.rebalancing and not app.in_recovery,
                  "rebalances": app.monitor.rebalances,
                  "recovery_remaining": monitoring.recovery_remaining()},
        "projections": {
            name: {"rows_estimate": rows.get(name),
                   "applied_total": latency.get(name, {}).get("count"),
                   "latency_ms": latency.get(name, {}),
                   "partitions": {str(p): asdict(b) for p, b in partitions.items()},
                   **_reached(name, partitions)}
            for name, partitions in lag.items()},
        "commands": dict(decided),
        "events_per_second": app.monitor.events_s,
        "parked_here": sum(dead_letters.parked.values()),
    }


def _reached(name: str, partitions: Any) -> dict[str, Any]:
    """For a view fed through a repartition topic: per partition held here, the last offset of
    each event-log partition its rows have folded (or seen pass in a watermark)."""
    if VIEWS.get(name) is None or VIEWS[name].by_aggregate:
        return {}
    return {"reached": {str(p): {str(s): o for s, o in progress.sources.get((name, p), {}).items()}
                        for p in partitions if (name, p) in progress.sources}}


def _by_topic(tps: Any) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for tp in sorted(tps):
        found.setdefault(tp.topic, []).append(tp.partition)
    return found


def members() -> list[str]:
    """Every worker the group's assignment names, this one first."""
    me = str(app.conf.canonical_url).rstrip("/")
    others = {str(url).rstrip("/") for url in app.router.tables_metadata()} - {me}
    return [me, *sorted(others)]


async def ask(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    try:
        async with http.get(f"{url}/cluster/local", timeout=ASK_TIMEOUT) as response:
            if response.status != 200:
                return _silent(url, f"answered {response.status}")
            part: dict[str, Any] = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return _silent(url, f"did not answer: {type(exc).__name__} {exc}".strip())
    return {**part, "answered": True}


def _silent(url: str, error: str) -> dict[str, Any]:
    return {"worker": url, "answered": False, "error": error}


def letter_summary(letter: DeadLetter) -> dict[str, Any]:
    """Where a dead letter came from and why, without its key or body."""
    return {"id": str(letter.dead_letter_id), "source_topic": letter.source_topic,
            "source_partition": letter.source_partition, "source_offset": letter.source_offset,
            "error": QUOTED_INPUT.sub("input_value=(hidden)", letter.error),
            "attempts": letter.attempts, "parked_at": letter.parked_at.isoformat()}


def waiting_letters(limit: int) -> dict[str, Any]:
    waiting = sorted(LEDGER.waiting(), key=lambda letter: letter.parked_at, reverse=True)
    return {"waiting": len(waiting), "newest": [letter_summary(x) for x in waiting[:limit]]}


@app.page("/cluster/local")
class ClusterPart(View):
    async def get(self, request: Request) -> Response:
        return self.json(local_part())


@app.page("/cluster")
class Cluster(View):
    async def get(self, request: Request) -> Response:
        try:
            limit = integer(request.query, "letters", LETTERS_SHOWN, 0, LETTERS_MOST)
        except BadQuery as exc:
            return self.error(400, str(exc))
        me, *others = members()
        answers = await asyncio.gather(*(ask(app.http_client, url) for url in others))
        return self.json({
            "asked": me,
            "at": time.time(),
            "workers": [{**local_part(), "answered": True}, *answers],
            "dead_letters": waiting_letters(limit),
            "views": {name: {"live": view.window is None} for name, view in VIEWS.items()},
        })
