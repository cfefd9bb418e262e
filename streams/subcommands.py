"""The project's own subcommands on Faust's CLI: `verify`, `schema` and `dlq`."""

import sys
from pathlib import Path

import click
from faust.cli import AppCommand, argument, option

from streams import dead_letter_tools
from streams import schema as schema_documents
from streams import verify as log_check
from streams.app import app, settings


@app.command(
    option("--url", "urls", multiple=True, default=[settings.advertised_url],
           help="a worker to ask (repeat to ask several); default: this worker's URL"),
)
async def verify(self: AppCommand, urls: tuple[str, ...]) -> None:
    """Fold the event log with the views' projectors and compare every key with the workers."""
    bootstrap = settings.broker.removeprefix("kafka://")
    events, unreadable = await log_check.read_log(bootstrap, settings.topic("events"))
    unfoldable: list[str] = []
    found = await log_check.differences(events, urls, unfoldable)
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
    argument("action", type=click.Choice(["list", "replay"])),
    option("--id", "ids", multiple=True, help="a dead letter to replay (repeat); default: all"),
)
async def dlq(self: AppCommand, action: str, ids: tuple[str, ...]) -> None:
    """List the dead letters, or replay them to the topics they came from."""
    bootstrap = settings.broker.removeprefix("kafka://")
    letters = await dead_letter_tools.parked(bootstrap, settings.topic("dead-letters"))
    if action == "list":
        for letter in letters:
            self.say(f"{letter.dead_letter_id}  {letter.source_topic}[{letter.source_partition}]"
                     f"@{letter.source_offset}  attempts={letter.attempts}  {letter.error[:160]}")
        self.say(f"{len(letters)} dead letters")
        return
    chosen = [letter for letter in letters if not ids or str(letter.dead_letter_id) in ids]
    await dead_letter_tools.replay(bootstrap, chosen)
    self.say(f"replayed {len(chosen)} dead letters")
