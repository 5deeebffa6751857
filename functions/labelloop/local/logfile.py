"""`labelloop local`'s logs in a file, its story on the terminal.

The terminal is what a newcomer reads first: the banner and the example's steps, not ~100 JSON
log lines of the handlers. File descriptors 1 and 2 go to the log file, so everything that
writes to them lands there: the handlers' Powertools loggers, the standard logging handlers, the
queue workers' process (it inherits them), tracebacks of threads. `print()` goes to a duplicate
of the terminal's descriptor instead.

The functions' loggers write to `sys.stdout` as it is at each line (on Lambda, and in the
emulator, which swaps it to collect a function's output), so while `print()` goes to the terminal
they are pointed at the file explicitly.
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
    from labelloop.observability import write_logs_to

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    write_logs_to(sys.stdout)  # still the object over descriptor 1: the log file from here on
    try:
        with contextlib.redirect_stdout(terminal):
            yield terminal
    finally:
        write_logs_to(None)
        sys.stdout.flush()
        sys.stderr.flush()
        for target, fd in zip((1, 2), saved, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        terminal.close()
