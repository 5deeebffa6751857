"""How a command fails on a problem the user can fix: `error: …` on one line, no trace."""

from __future__ import annotations

import sys
from typing import NoReturn


class CliError(Exception):
    """A problem the user can fix (bad input file, missing credentials): one line, no trace."""


def fail(message: str, status: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)
