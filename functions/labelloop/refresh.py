"""Refreshing a warm container's cached entries once, not once per thread.

When an entry expires under concurrent requests (the local stack's threads; a Lambda container
serves one request at a time and never contends), every thread that sees it expired would
re-read it at once: eight clients made eight identical reads of a 227-label function every
two seconds. Here one thread re-reads while the others go on with the expired entry (older by
at most one read); a missing entry is waited for, so nobody sees nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class Refresh:
    def __init__(self):
        self._locks: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, lookup: Callable[[], T | None], fresh: Callable[[T], bool],
            load: Callable[[], T]) -> T:
        """`lookup()` the cached entry (None: missing or unusable); if it is not `fresh`,
        `load()` it (which stores it), one thread per key at a time."""
        entry = lookup()
        if entry is not None and fresh(entry):
            return entry
        lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=entry is None):
            return entry  # another thread is re-reading it
        try:
            entry = lookup()
            return entry if entry is not None and fresh(entry) else load()
        finally:
            lock.release()
