"""The project's own subcommands on Faust's CLI: `verify` and `schema`."""

import sys
from pathlib import Path

from faust.cli import AppCommand, option

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
    found = await log_check.differences(events, urls)
    for line in found:
        self.say(line)
    self.say(f"{len(events)} events ({unreadable} unreadable), {len(found)} differences")
    if found:
        sys.exit(1)


@app.command(option("--out", default="schemas", help="directory to write the schemas to"))
async def schema(self: AppCommand, out: str) -> None:
    """Write the JSON Schema of every command, event and command result."""
    for path in schema_documents.write(Path(out)):
        self.say(str(path))
