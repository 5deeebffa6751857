"""Ids: `<kind>_<bare>`, the bare part time-ordered so that sorting by id sorts by creation.

The Nyckel SDK strips a prefix by splitting on "_" and keeping the second part when there are
exactly two, so the bare part never contains "_". Every route accepts both forms.
"""

from __future__ import annotations

import os
import re
import time

from labelloop.errors import BadRequest

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_BARE = re.compile(r"^[0-9a-z]{6,40}$")


def _b32(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 32)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def new_bare(ms: int | None = None, tail: bytes | None = None) -> str:
    """10 characters of milliseconds (sortable until the year 10889) + 12 from 8 bytes: now
    and random by default; given both, the same id every time (e.g. a redelivered message's)."""
    ms = time.time_ns() // 1_000_000 if ms is None else ms
    return _b32(ms, 10) + _b32(int.from_bytes(os.urandom(8) if tail is None else tail[:8]), 12)


def created_at(bare_id: str) -> float | None:
    """Epoch seconds at which `new_bare` made `bare_id` (its first 10 characters); None if
    they cannot be ours."""
    n = 0
    for ch in bare_id[:10]:
        digit = _ALPHABET.find(ch)
        if digit < 0:
            return None
        n = n * 32 + digit
    return n / 1000


def bare(value: str, kind: str, field: str | None = None) -> str:
    """The bare id of `value`, given with or without its `<kind>_` prefix; a 400 naming `field`
    (by default `<kind>Id`) if it cannot be an id of that kind."""
    s = value.strip()
    if s.startswith(kind + "_"):
        s = s[len(kind) + 1 :]
    if not _BARE.match(s):
        raise BadRequest(f"{field or kind + 'Id'}: not a {kind} id")
    return s


def full(bare_id: str, kind: str) -> str:
    return f"{kind}_{bare_id}"
