"""A cached entry that expires under concurrent requests is re-read once (labelloop.refresh)."""

from __future__ import annotations

import threading
import time

from labelloop.refresh import Refresh


class Cache:
    def __init__(self):
        self.entry: tuple[int, float] | None = None  # (generation, loaded at)
        self.loads = 0
        self.refresh = Refresh()

    def load(self) -> tuple[int, float]:
        self.loads += 1
        time.sleep(0.3)  # a read that takes a while: the other threads arrive meanwhile
        self.entry = (self.loads, time.monotonic())
        return self.entry

    def get(self, ttl: float = 60.0) -> tuple[int, float]:
        return self.refresh.get("f", lambda: self.entry,
                                lambda e: time.monotonic() - e[1] <= ttl, self.load)


def in_threads(fn, n: int = 8) -> list:
    out: list = [None] * n

    def run(i: int) -> None:
        out[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_a_missing_entry_is_read_once_and_every_thread_waits_for_it():
    cache = Cache()
    got = in_threads(cache.get)
    assert cache.loads == 1
    assert {g[0] for g in got} == {1}


def test_an_expired_entry_is_read_once_while_the_others_use_it():
    cache = Cache()
    cache.get()
    got = in_threads(lambda: cache.get(ttl=0.0))
    assert cache.loads == 2  # one re-read for eight threads
    generations = [g[0] for g in got]
    assert generations.count(2) == 1 and generations.count(1) == 7  # the reader waited for it
    assert cache.get()[0] == 2  # fresh again: no read
    assert cache.loads == 2
