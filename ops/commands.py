"""The project's own subcommands on Faust's CLI: `verify`, `schema`, `dlq` and `views`."""

import sys
from pathlib import Path
from typing import Any

import click
import orjson
from faust.cli import AppCommand, argument, option

from agents import view_admin
from ops import dlq as dead_letter_tools
from ops import schema as schema_documents
from ops import verify as log_check
from ops import views as view_tools
from streams.app import app, settings
from tables.registry import VERSIONS, VIEWS


@app.command(
    option("--url", "urls", multiple=True, default=[settings.advertised_url],
           help="a worker to ask (repeat to ask several); default: this worker's URL"),
)
async def verify(self: AppCommand, urls: tuple[str, ...]) -> None:
    """Fold the event log with the live versions' projectors and compare every key with the
    workers."""
    events, unreadable = await log_check.read_log(settings.bootstrap, settings.topic("events"))
    unfoldable: list[str] = []
    catalog = await view_admin.read_catalog()
    live = {name: VERSIONS[name][catalog.live_version(name)] for name in VIEWS}
    found = await log_check.differences(events, urls, unfoldable, live)
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
)
async def dlq(self: AppCommand, action: str, ids: tuple[str, ...], everything: bool) -> None:
    """List the dead letters that wait, replay them to the topics they came from, or discard
    them; replayed and discarded letters no longer make /health degraded."""
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
    chosen = [letter for letter in found.letters.values() if str(letter.dead_letter_id) in ids]
    unknown = set(ids) - {str(letter.dead_letter_id) for letter in chosen}
    if unknown:
        raise click.UsageError(f"no such dead letter: {', '.join(sorted(unknown))}")
    chosen = chosen if ids else waiting
    how = "replayed" if action == "replay" else "discarded"
    await dead_letter_tools.resolve(settings.bootstrap, topic, chosen, how)
    self.say(f"{how} {len(chosen)} dead letters")


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
                "waits until they let go of it"),
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
        if await view_tools.compare(old, new, self.say, quiet, wait):
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


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
