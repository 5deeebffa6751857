"""The invoke path's per-container cache of features: an input seen before (the same text, or
the same picture's bytes) skips the encoder, the invoke's whole cost but for the head.

Keyed by function, encoder and the input's sha256, never shared between functions: a hit is
faster, and that must not tell one tenant what another sent. It holds features, not
predictions: a hit is still predicted by the function's live model (a ~0.1 ms head), so a
promotion needs no invalidation and no hit can answer with a version that is no longer live.
Least recently used entries go first; every `REPORT_EVERY` lookups the hit rate is logged.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from labelloop.encoder import Features

log = logging.getLogger(__name__)
REPORT_EVERY = 1000


class FeatureCache:
    """Keys: (function id, encoder, the input's sha256), as `usecases.inputs` makes them."""

    def __init__(self, entries: int):
        self.entries = entries
        self._items: OrderedDict[tuple, Features] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._window = [0, 0]  # hits, lookups since the last report

    def get(self, k: tuple) -> Features | None:
        with self._lock:
            found = self._items.get(k)
            if found is not None:
                self._items.move_to_end(k)
            self.hits += found is not None
            self.misses += found is None
            self._window[0] += found is not None
            self._window[1] += 1
            report = self._window[1] >= REPORT_EVERY and self._window
            if report:
                self._window = [0, 0]
        if report:
            log.info("invoke feature cache: hit rate %.3f over the last %d lookups (%d of %d "
                     "entries used)", report[0] / report[1], report[1], len(self._items),
                     self.entries)
        return found

    def put(self, k: tuple, features: Features) -> None:
        if self.entries <= 0:
            return
        with self._lock:
            self._items[k] = features
            self._items.move_to_end(k)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
