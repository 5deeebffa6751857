"""Invoke records a container holds for one batch write (`LABELLOOP_INVOKE_RECORD_BATCH` > 1).

By default an invoke's record is written by that invoke's work after its response
(`afterwork`): one PutItem per invoke, a round trip that a busy container pays before it can
take its next invoke. With a batch of n, the container holds records and writes them with one
BatchWriteItem: in the work of the invoke that brings the held records to n, or of the first
invoke at least `LABELLOOP_INVOKE_RECORD_DELAY_SECONDS` after the oldest was held, and at the
container's shutdown (`afterwork.at_shutdown`: SIGTERM in Lambda, the local stack's stop). A
write that fails holds its records again for the next one.

The trade, which is why it is off by default: under steady traffic a record lands up to the
delay late (feedback on a sampleId waits 3 s for its record, so it still finds it); at the end
of a burst the last records wait for the container's next invoke or its shutdown; and the held
records of a container that dies without a shutdown (out of memory, a timeout) are lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from labelloop.domain import InvokeItem

log = logging.getLogger(__name__)

# Records a container keeps while writes fail: past it, the oldest are dropped (logged).
MAX_HELD = 10_000


class HeldRecords:
    """Thread-safe: the local gateway runs invokes' work on several threads."""

    def __init__(self, size: int, delay_seconds: float,
                 write: Callable[[list[InvokeItem]], None]):
        self.size, self.delay = size, delay_seconds
        self._write = write
        self._held: list[tuple[float, InvokeItem]] = []
        self._lock = threading.Lock()

    def add(self, record: InvokeItem, now: float) -> int:
        """Hold `record`, and write every held one if the batch is full or its oldest has
        waited the delay; the number written."""
        with self._lock:
            self._held.append((now, record))
            due = len(self._held) >= self.size or now - self._held[0][0] >= self.delay
            taken = self._take() if due else []
        return self._written(taken)

    def flush(self) -> int:
        """Write every held record (at shutdown); the number written."""
        with self._lock:
            taken = self._take()
        return self._written(taken)

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def _take(self) -> list[tuple[float, InvokeItem]]:
        taken, self._held = self._held, []
        return taken

    def _written(self, taken: list[tuple[float, InvokeItem]]) -> int:
        if not taken:
            return 0
        try:
            self._write([record for _, record in taken])
        except Exception:
            self._hold_again(taken)
            raise
        return len(taken)

    def _hold_again(self, taken: list[tuple[float, InvokeItem]]) -> None:
        # Ahead of what came meanwhile, with their first times: the next invoke writes them.
        with self._lock:
            self._held[:0] = taken
            if len(self._held) > MAX_HELD:
                dropped = len(self._held) - MAX_HELD
                del self._held[:dropped]
                log.error("dropped the %d oldest unwritten invoke records (over %d held "
                          "while writes failed)", dropped, MAX_HELD)
