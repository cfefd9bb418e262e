"""The project's own subcommands on Faust's CLI: `verify`, `schema`, `dlq`, `outbox` and
`views`."""

import sys
from pathlib import Path
from typing import Any

import click
import orjson
from faust.cli import AppCommand, argument, option

from agents import build_apart as apart
from agents import view_admin
from ops import dlq as dead_letter_tools
from ops import outbox as outbox_relay
from ops import schema as schema_documents
from ops import verify as log_check
from ops import views as view_tools
from ops.outbox_sources import SourceError
from ops.progress import Reporter
from streams.app import app, settings
from streams.dead_letters import UnknownLetters, choose
from streams.kafka_clients import BrokerAuthenticationFailed, check_credentials
from tables.registry import VERSIONS, VIEWS


@app.command(
    option("--url", "urls", multiple=True, default=[settings.advertised_url],
           help="a worker to ask (repeat to ask several); default: this worker's URL"),
    option("--quiet", is_flag=True, help="no progress, only differences and the summary"),
)
async def verify(self: AppCommand, urls: tuple[str, ...], quiet: bool) -> None:
    """Fold the event log with the live versions' projectors and compare every key with the
    workers; fold it with the aggregates' evolvers (and the saga's inputs with its reactions)
    and compare with their stored states; compare the views with the aggregates."""
    await authenticated()
    try:
        with Reporter("reading the event log", quiet=quiet) as bar:
            events, unreadable = await log_check.read_log(settings.bootstrap,
                                                          settings.topic("events"), bar)
        unfoldable: list[str] = []
        catalog = await view_admin.read_catalog()
        live = {name: VERSIONS[name][catalog.live_version(name)] for name in VIEWS}
        with Reporter("comparing the views with the workers", quiet=quiet) as bar:
            found = await log_check.differences(events, urls, unfoldable, bar, live)
        with Reporter("reading the stored states", quiet=quiet) as bar:
            found += await log_check.write_side_differences(settings.bootstrap, events, [], bar)
    except log_check.MissingTopic as exc:
        print(f"error: {exc}: has a worker with this topic prefix ever run?", file=sys.stderr)
        sys.exit(2)
    for line in found:
        self.say(line)
    self.say(f"{len(events)} events ({unreadable} unreadable, {len(unfoldable)} not foldable "
             f"where they stand, as the workers parked them), {len(found)} differences")
    if found:
        sys.exit(1)


@app.command(option("--out", default="schemas", help="directory to write the schemas to"))
async def schema(self: AppCommand, out: str) -> None:
    """Write the JSON Schema of every command, event and command result."""
    for path in schema_documents.write(Path(out)):
        self.say(str(path))


@app.command(
    argument("action", type=click.Choice(["list", "replay", "discard"])),
    option("--id", "ids", multiple=True,
           help="a dead letter to replay or discard (repeat); default: every waiting one"),
    option("--all", "everything", is_flag=True, help="list resolved dead letters too"),
    option("--quiet", is_flag=True, help="no progress bar or progress lines"),
)
async def dlq(self: AppCommand, action: str, ids: tuple[str, ...], everything: bool,
              quiet: bool) -> None:
    """List the dead letters that wait, replay them to the topics they came from, or discard
    them; replayed and discarded letters no longer make /health degraded."""
    await authenticated()
    topic = settings.topic("dead-letters")
    found = await dead_letter_tools.ledger(settings.bootstrap, topic)
    waiting = found.waiting()
    if action == "list":
        for letter in found.letters.values() if everything else waiting:
            state = "resolved" if letter.dead_letter_id in found.resolved else "waiting"
            self.say(f"{letter.dead_letter_id}  {state}  {letter.source_topic}"
                     f"[{letter.source_partition}]@{letter.source_offset}  "
                     f"attempts={letter.attempts}  {letter.error[:160]}")
        self.say(f"{len(waiting)} dead letters waiting, {len(found.letters)} in all")
        return
    try:
        chosen = choose(found, list(ids) or None)
    except UnknownLetters as exc:
        raise click.UsageError(str(exc)) from None
    if action == "replay" and not all(map(dead_letter_tools.replayable, chosen)):
        rows = [letter for letter in chosen if not dead_letter_tools.replayable(letter)]
        chosen = [letter for letter in chosen if dead_letter_tools.replayable(letter)]
        self.say(f"not replaying {len(rows)} dead letters from outbox tables: correct the row "
                 "and insert it into the outbox again, then `dlq discard --id` the letter")
    how = "replayed" if action == "replay" else "discarded"
    with Reporter(f"dlq {action}", len(chosen), quiet=quiet) as bar:
        await dead_letter_tools.resolve(settings.bootstrap, topic, chosen, how, bar)
    self.say(f"{how} {len(chosen)} dead letters")


async def authenticated() -> None:
    """Stop at once, saying why, when the broker refuses our credentials."""
    try:
        await check_credentials(settings)
    except BrokerAuthenticationFailed as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


@app.command(
    option("--dsn", default="sqlite:///outbox.db", show_default=True,
           help="the database: sqlite:///path.db or postgresql://user@host:port/db"),
    option("--table", default="outbox", show_default=True, help="the outbox table"),
    option("--create", is_flag=True, help="create the outbox table first if it is missing"),
    option("--batch", default=500, show_default=True, type=click.IntRange(1, 100_000),
           help="rows published per round"),
    option("--poll", default=0.2, show_default=True, type=click.FloatRange(0.01, 60),
           help="seconds to wait before looking again at an empty outbox"),
    option("--until-empty", is_flag=True, help="stop once the outbox is empty"),
    option("--quiet", is_flag=True, help="no progress output"),
)
async def outbox(self: AppCommand, dsn: str, table: str, create: bool, batch: int, poll: float,
                 until_empty: bool, quiet: bool) -> None:
    """Relay an outbox table in your database to the commands topic (see docs/outbox.md)."""
    to = outbox_relay.Destinations(settings.topic("commands"), settings.topic("dead-letters"))
    try:
        published = await outbox_relay.run(
            dsn, table, settings.bootstrap, to, create=create, batch=batch, poll=poll,
            until_empty=until_empty, quiet=quiet, linger_ms=settings.linger_ms)
    except SourceError as exc:
        raise click.UsageError(str(exc)) from exc
    if not quiet:
        self.say(f"{published.rows} outbox rows published, {published.dead_letters} of them "
                 "as dead letters")


@app.command(
    argument("action", type=click.Choice(["list", "rebuild", "compare", "switch", "retire"])),
    argument("view", required=False),
    argument("versions", nargs=-1, type=int),
    option("--version", "version", type=int, default=None,
           help="rebuild: the version to build (default: the newest declared)"),
    option("--force", is_flag=True, help="switch: even to a version not caught up"),
    option("--wait", type=float, default=30.0,
           help="switch, compare: seconds to wait for the versions to catch up with the log"),
    option("--url", "urls", multiple=True, default=[settings.advertised_url],
           help="a worker to ask (repeat): switch measures when they serve it, retire "
                "waits until they let go of it, compare asks how far the resident "
                "version has folded"),
    option("--quiet", is_flag=True, help="no progress output"),
    option("--json", "as_json", is_flag=True, help="list: print JSON"),
)
async def views(self: AppCommand, action: str, view: str | None, versions: tuple[int, ...],
                version: int | None, force: bool, wait: float, urls: tuple[str, ...],
                quiet: bool, as_json: bool) -> None:
    """Versions of the views: list them, rebuild one from the log, compare two, switch the
    live one (switch back to roll back) and retire one."""
    try:
        if action == "list":
            entries = await view_tools.list_versions()
            if view:
                entries = [entry for entry in entries if entry["view"] == view]
            if as_json:
                self.say(json_text(entries))
            for line in [] if as_json else view_tools.describe(entries):
                self.say(line)
            return
        if view is None:
            raise click.UsageError(f"views {action} needs a view name")
        await _views_action(self, action, view, versions, version, force, wait, urls, quiet)
    except view_admin.Refused as exc:
        self.say(f"refused: {exc}")
        sys.exit(2)


async def _views_action(self: AppCommand, action: str, view: str, versions: tuple[int, ...],
                        version: int | None, force: bool, wait: float, urls: tuple[str, ...],
                        quiet: bool) -> None:
    if action == "rebuild":
        number = version if version is not None else view_admin.newest(view)
        self.say(await view_admin.rebuild(view_admin.version_of(view, number)))
        return
    if action == "compare":
        if len(versions) != 2:
            raise click.UsageError("views compare <view> A B")
        old, new = (view_admin.version_of(view, n) for n in versions)
        if await view_tools.compare(old, new, self.say, quiet, wait, urls):
            sys.exit(1)
        return
    if len(versions) != 1:
        raise click.UsageError(f"views {action} <view> N")
    chosen = view_admin.version_of(view, versions[0])
    if action == "switch":
        self.say(await view_admin.switch(chosen, force, wait))
        seconds = await view_tools.measure_switch(urls, chosen)
        self.say(f"served by {len(urls)} worker(s) asked within {seconds:.3f} s")
        return
    self.say(await view_admin.retire(chosen, view_tools.wait_released(urls, chosen)))


@app.command(argument("view"), argument("version", type=int), argument("partitions"))
async def build_apart(self: AppCommand, view: str, version: int, partitions: str) -> None:
    """Started by a worker, not by hand: fold a view version on the worker's partitions in
    a process of its own (agents/build_process.py)."""
    await apart.run(VERSIONS[view][version], {int(p) for p in partitions.split(",")})


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
