"""`labelloop local`'s logs in a file, its story on the terminal.

The terminal is what a newcomer reads first: the banner and the example's steps, not ~100 JSON
log lines of the handlers. File descriptors 1 and 2 go to the log file, so everything that
writes to them lands there: the handlers' Powertools loggers, the standard logging handlers, the
queue workers' process (it inherits them), tracebacks of threads. `print()` goes to a duplicate
of the terminal's descriptor instead.

The Lambda code is left alone: on Lambda (and in the emulator, which swaps `sys.stdout` to
collect a function's output) its loggers must write to the process's stdout as they always do.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def logs_to_file(path: Path) -> Iterator[TextIO]:
    """Within: descriptors 1 and 2 append to `path` (0600), `print()` reaches the terminal
    (the stream yielded). Both are restored on the way out, so an error shows where it was
    started."""
    # The API's logger binds the `sys.stdout` of its creation: create it now, while that is
    # still the object over descriptor 1 (the log file from below on).
    import labelloop.api.app  # noqa: F401

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        with contextlib.redirect_stdout(terminal):
            yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for target, fd in zip((1, 2), saved, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        terminal.close()
