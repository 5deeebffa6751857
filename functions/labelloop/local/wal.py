"""The local AWS's write-ahead log: what moto did since the last snapshot, on disk before the
response that acknowledges it.

Records go to numbered segment files `<data_dir>/wal/<n>.log`, each record framed as
`length, crc32, pickle` so that a torn tail (a kill mid-write) is recognised and dropped: it
was never acknowledged. A snapshot names the first segment it does not include; compaction
starts a new segment, snapshots, then deletes the older segments.

Writes happen under the caller's lock (they order the log as moto ordered the requests);
the fsync does not: a request waits for `durable(lsn)` after releasing the lock, and one fsync
covers every request written before it (group commit).
"""

from __future__ import annotations

import os
import pickle
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

_HEADER = struct.Struct("<II")  # payload length, crc32 of the payload
SUFFIX = ".log"


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:08d}{SUFFIX}"


def segments(directory: Path) -> list[int]:
    if not directory.exists():
        return []
    return sorted(int(p.stem) for p in directory.glob(f"*{SUFFIX}") if p.stem.isdigit())


def read_segment(path: Path) -> tuple[list[dict], int]:
    """The records of a segment and the byte length of its intact prefix."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size:offset + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        records.append(pickle.loads(payload))
        offset += _HEADER.size + length
    return records, offset


def replayable(directory: Path, first: int) -> Iterator[tuple[int, list[dict]]]:
    """Segments from `first` on, in order. A torn tail is cut off the last segment (nothing
    after it was acknowledged); a torn record before the last segment means lost data."""
    numbers = [n for n in segments(directory) if n >= first]
    for i, number in enumerate(numbers):
        path = segment_path(directory, number)
        records, intact = read_segment(path)
        if intact < path.stat().st_size:
            if i < len(numbers) - 1:
                raise RuntimeError(f"{path} is damaged at byte {intact}, before later segments")
            with open(path, "r+b") as f:
                f.truncate(intact)
                os.fsync(f.fileno())
        yield number, records


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Log:
    """Appends to the current segment; `durable(lsn)` returns once record `lsn` is on disk."""

    def __init__(self, directory: Path, segment: int):
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._cond = threading.Condition()
        self._written = 0  # log sequence numbers of this process: written, and fsynced
        self._synced = 0
        self._syncing = False
        self.segment = segment
        self.segment_bytes = 0
        self._fd = self._open(segment)

    def _open(self, number: int) -> int:
        fd = os.open(segment_path(self.directory, number),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self.directory)  # the new file's name is durable before records rely on it
        return fd

    def append(self, record: dict) -> int:
        """Write one record (call under the lock that orders the requests); its lsn."""
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._cond:
            view = memoryview(frame)
            while view:
                view = view[os.write(self._fd, view):]
            self.segment_bytes += len(frame)
            self._written += 1
            return self._written

    @property
    def written(self) -> int:
        return self._written

    def durable(self, lsn: int) -> None:
        """Block until every record up to `lsn` is fsynced; one caller fsyncs for all."""
        with self._cond:
            while self._synced < lsn:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                upto, fd = self._written, self._fd
                self._cond.release()
                try:
                    os.fsync(fd)
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                self._synced = max(self._synced, upto)

    def rotate(self) -> int:
        """Continue in a new segment (call under the ordering lock); the new segment's number."""
        with self._cond:
            while self._syncing:
                self._cond.wait()
            os.fsync(self._fd)
            os.close(self._fd)
            self._synced = self._written
            self.segment += 1
            self.segment_bytes = 0
            self._fd = self._open(self.segment)
            return self.segment

    def drop_before(self, number: int) -> None:
        """Delete segments a durable snapshot includes."""
        for n in segments(self.directory):
            if n < number:
                segment_path(self.directory, n).unlink(missing_ok=True)

    def close(self) -> None:
        with self._cond:
            while self._syncing:
                self._cond.wait()
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._synced = self._written
                self._fd = -1
