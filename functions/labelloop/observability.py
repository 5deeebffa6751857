"""Logging shared by every Lambda of the app and the local stack.

Each Lambda logs JSON through one Powertools Logger with its own service name. The loggers
write to `sys.stdout` as it is at each write, not as it was when they were made: a runtime
that swaps it to collect a function's output (an emulator does) still gets the lines. The
local stack sends them elsewhere (`send_logs_to`: its log file) while its terminal output
goes through `sys.stdout`.
"""

from __future__ import annotations

import sys
from typing import TextIO

from aws_lambda_powertools import Logger


class _Stream:
    target: TextIO | None = None

    def write(self, text: str) -> int:
        return (self.target or sys.stdout).write(text)

    def flush(self) -> None:
        (self.target or sys.stdout).flush()


_STREAM = _Stream()


def send_logs_to(stream: TextIO | None) -> None:
    """Every logger of this module writes to `stream` from now on (None: `sys.stdout`)."""
    _STREAM.target = stream


def logger(service: str) -> Logger:
    return Logger(service=service, stream=_STREAM)
