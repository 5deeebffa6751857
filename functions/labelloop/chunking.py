"""Splitting a list into runs bounded in count and in encoded size (batch-invoke parts on the
server, batch jobs in the CLI)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def bounded_chunks(items: Sequence[T], size_of: Callable[[T], int], max_items: int,
                   max_bytes: int) -> list[tuple[int, list[T]]]:
    """(index of the first item, items) per chunk: at most max_items items whose sizes sum to
    at most max_bytes (an item larger than that alone still makes a chunk of one)."""
    chunks: list[tuple[int, list[T]]] = []
    chunk: list[T] = []
    start = size = 0
    for i, item in enumerate(items):
        n = size_of(item)
        if chunk and (len(chunk) == max_items or size + n > max_bytes):
            chunks.append((start, chunk))
            chunk, start, size = [], i, 0
        chunk.append(item)
        size += n
    if chunk:
        chunks.append((start, chunk))
    return chunks
