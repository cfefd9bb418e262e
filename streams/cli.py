"""`python -m streams`: Faust's own CLI (worker, tables, ...) with the project's modules registered."""

from streams.app import app

# Explicit registration: the card's package names are too generic to autodiscover safely.
import agents.command_handler  # noqa: E402,F401
import agents.projector  # noqa: E402,F401
import agents.saga_agent  # noqa: E402,F401
import streams.subcommands  # noqa: E402,F401
import web.views  # noqa: E402,F401


def main() -> None:
    app.main()
