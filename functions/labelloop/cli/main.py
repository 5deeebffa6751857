"""The `labelloop` command line: the parser composed of the command groups, and `main`."""

from __future__ import annotations

import argparse
import sys

from labelloop.cli import (
    capture,
    clients,
    demo,
    functions,
    invoke,
    local,
    models,
    review,
    samples,
    thresholds,
    train,
)
from labelloop.cli.connection import connection_options

# The order of `labelloop --help`: demo and local first, then the service's commands.
SERVICE_COMMANDS = (functions, samples, train, invoke, models, review, capture, thresholds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelloop", description="The `labelloop` command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)
    local.add_parser(sub)
    conn = connection_options()
    for group in SERVICE_COMMANDS:
        group.add_parser(sub, conn)
    clients.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("labels", "samples", "queries"):
        path = getattr(args, name, None)
        if path is not None and not path.exists():
            parser.error(f"--{name}: {path} does not exist")
    try:
        args.func(args)
    except BrokenPipeError:  # e.g. piped into head
        sys.exit(0)
