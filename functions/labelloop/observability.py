"""Logging shared by every Lambda of the app and the local stack.

Each Lambda logs JSON through one Powertools Logger with its own service name. The logger
writes to the process's standard output (`sys.__stdout__`): CloudWatch on Lambda; on the local
stack, the log file `labelloop local` points that descriptor at, while what it prints for a
person goes through `sys.stdout` to the terminal.
"""

from __future__ import annotations

import sys

from aws_lambda_powertools import Logger


def logger(service: str) -> Logger:
    return Logger(service=service, stream=sys.__stdout__)
