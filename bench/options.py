"""Options the benches share."""

import argparse


def add_settings(parser: argparse.ArgumentParser, whose: str, example: str) -> None:
    """`--set NAME=VALUE`, repeatable: a SHOPSTREAM_ setting for the workers an A/B runs."""
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help=f"a SHOPSTREAM_ setting for {whose}, e.g. {example}")


def settings_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """The `--set` settings by name without the prefix; a malformed one ends the command."""
    if any("=" not in item for item in args.set):
        parser.error("--set takes NAME=VALUE")
    return dict(item.split("=", 1) for item in args.set)
