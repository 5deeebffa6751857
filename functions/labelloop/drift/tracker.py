"""The container's side of drift: counts of its own invokes per function and live version, held
until a flush is due (so many of them, or so long after the first), the version's drift
reference once read (it never changes), and the last
drift status it read, which the capture decision asks (`flagged`). No write per invoke: one per
flush, so no key is hot however busy the function.

At the container's shutdown (`afterwork.at_shutdown`) the unflushed counts are written too; a
container that dies without one loses them (at most one flush's worth): counters, not records,
and drift is read over hundreds of invokes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labelloop.drift.counts import DriftCounts


@dataclass(frozen=True)
class DriftStatus:
    version: int
    score: float | None  # None: the reference or the recent window is not complete yet
    flagged: bool


class DriftTracker:
    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int], tuple[DriftCounts, float]] = {}
        self._status: dict[str, DriftStatus] = {}
        self._rows: dict[str, tuple[int, np.ndarray]] = {}  # per function: its live version's
        # Per function, its live version's reference once stored (immutable: read once).
        self._references: dict[str, tuple[int, tuple[DriftCounts, str]]] = {}

    def observe(self, fid: str, version: int, label_id: str, confidence: float, novel: bool,
                flush_invokes: int, flush_seconds: float, now: float | None = None
                ) -> DriftCounts | None:
        """Count one invoke; the counts to flush when a flush is due (`flush_invokes` of them,
        or `flush_seconds` after the first; taken: the caller writes them), else None."""
        now = time.monotonic() if now is None else now
        key = (fid, version)
        with self._lock:
            counts, since = self._pending.get(key) or (DriftCounts(), now)
            counts.add(label_id, confidence, novel)
            if counts.invokes >= flush_invokes or now - since >= flush_seconds:
                self._pending.pop(key, None)
                return counts
            self._pending[key] = (counts, since)
            return None

    def take_pending(self) -> list[tuple[str, int, DriftCounts]]:
        """Every unflushed count, taken (the caller writes them): (function, version, counts)."""
        with self._lock:
            taken, self._pending = self._pending, {}
        return [(fid, version, counts) for (fid, version), (counts, _) in taken.items()]

    def novelty_rows(self, fid: str, version: int, load: Callable[[], np.ndarray]
                     ) -> np.ndarray:
        """The training embeddings novelty is measured against, loaded once per version."""
        with self._lock:
            held = self._rows.get(fid)
        if held is not None and held[0] == version:
            return held[1]
        rows = load()
        with self._lock:
            self._rows[fid] = (version, rows)
        return rows

    def reference(self, fid: str, version: int) -> tuple[DriftCounts, str] | None:
        with self._lock:
            held = self._references.get(fid)
        return held[1] if held is not None and held[0] == version else None

    def keep_reference(self, fid: str, version: int, ref: tuple[DriftCounts, str]) -> None:
        with self._lock:
            self._references[fid] = (version, ref)

    def scored(self, fid: str, status: DriftStatus) -> None:
        with self._lock:
            self._status[fid] = status

    def status(self, fid: str) -> DriftStatus | None:
        """The last status this container read for the function."""
        with self._lock:
            return self._status.get(fid)

    def flagged(self, fid: str, version: int) -> bool:
        """Whether the last status read for the function's live version said drift."""
        s = self.status(fid)
        return s is not None and s.version == version and s.flagged
