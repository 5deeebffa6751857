"""Invokes whose work after the response a container holds, to do it for several at once
(`LABELLOOP_HELD_INVOKES` > 1; `usecases/held.py` says what that work is).

By default each invoke's work after its response (`afterwork`) is its own: a PutItem for its
record, a transaction for a capture, its drift count; a busy container pays those round trips
before it can take its next invoke. Held, n invokes' work is done at once, in the work of the
invoke that brings the held ones to n, or of the first invoke at least
`LABELLOOP_HELD_INVOKES_DELAY_SECONDS` after the oldest was held, and at the container's
shutdown (`afterwork.at_shutdown`: SIGTERM in Lambda, the local stack's stop). A write that
fails holds its invokes again for the next one.

The trade, which is why it is off by default: under steady traffic a record or a capture
lands up to the delay late (feedback on a sampleId waits 3 s for its record, so it still
finds it); at the end of a burst the last invokes wait for the container's next invoke or its
shutdown; and what a container holds is lost if it dies without a shutdown (out of memory, a
timeout).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

# Invokes a container keeps while writes fail: past it, the oldest are dropped (logged).
MAX_HELD = 10_000

T = TypeVar("T")


class HeldInvokes(Generic[T]):
    """Thread-safe: the local gateway runs invokes' work on several threads."""

    def __init__(self, size: int, delay_seconds: float, write: Callable[[list[T]], None]):
        self.size, self.delay = size, delay_seconds
        self._write = write
        self._held: list[tuple[float, T]] = []
        self._lock = threading.Lock()

    def add(self, item: T, now: float) -> int:
        """Hold `item`, and write every held one if `size` are held or the oldest has waited
        the delay; the number written."""
        with self._lock:
            self._held.append((now, item))
            due = len(self._held) >= self.size or now - self._held[0][0] >= self.delay
            taken = self._take() if due else []
        return self._written(taken)

    def flush(self) -> int:
        """Write every held item (at shutdown); the number written."""
        with self._lock:
            taken = self._take()
        return self._written(taken)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def _take(self) -> list[tuple[float, T]]:
        taken, self._held = self._held, []
        return taken

    def _written(self, taken: list[tuple[float, T]]) -> int:
        if not taken:
            return 0
        try:
            self._write([item for _, item in taken])
        except Exception:
            self._hold_again(taken)
            raise
        return len(taken)

    def _hold_again(self, taken: list[tuple[float, T]]) -> None:
        # Ahead of what came meanwhile, with their first times: the next invoke writes them.
        with self._lock:
            self._held[:0] = taken
            if len(self._held) > MAX_HELD:
                dropped = len(self._held) - MAX_HELD
                del self._held[:dropped]
                log.error("dropped the %d oldest held invokes (over %d held while writes "
                          "failed)", dropped, MAX_HELD)
