"""A function's sample counts (`COUNTS#<shard>`: `samples`, and `label#<label id>` per label,
the samples annotated with it) as transaction operations: every write that adds, removes or
relabels a sample changes them in the same transaction, so the counts never drift from the
samples and reading them is one small Query (the metrics route, which the SDK polls; it used
to read every sample).

The counts are spread over `SHARDS` items, each write touching the one its sample's id hashes
to, and the reader sums them: DynamoDB refuses a transaction on an item another transaction
is writing (TransactionConflict), so one counts item would make a function's concurrent
writes (parallel import requests, captures from several containers) refuse each other.

The items are created with the function, marked `complete`. A function from before them has
none; a write would create one without the mark (ADD makes the item), and readers count the
samples instead while any mark is missing.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Mapping

from labelloop.data.codec import put_op
from labelloop.domain import SampleCounts

PREFIX = "COUNTS#"
SHARDS = 8
_LABEL = "label#"


def created(table, fk: str) -> list[dict]:
    """The counts of a new function (in the transaction that creates it)."""
    return [put_op(table, {"pk": fk, "sk": f"{PREFIX}{n}", "samples": 0, "complete": True})
            for n in range(SHARDS)]


def change(table, fk: str, sample_id: str, samples: int = 0,
           labels: Mapping[str, int] | None = None) -> dict | None:
    """An Update, on the shard `sample_id` hashes to, adding `samples` to the count and each
    label's delta to its count; None when nothing changes."""
    deltas = {k: v for k, v in (labels or {}).items() if v}
    if not samples and not deltas:
        return None
    names = {f"#l{i}": _LABEL + k for i, k in enumerate(deltas)}
    values = {f":l{i}": v for i, v in enumerate(deltas.values())}
    parts = [f"#l{i} :l{i}" for i in range(len(deltas))]
    if samples:
        parts.insert(0, "samples :s")
        values[":s"] = samples
    shard = zlib.crc32(sample_id.encode()) % SHARDS
    op = {"TableName": table.name, "Key": {"pk": fk, "sk": f"{PREFIX}{shard}"},
          "UpdateExpression": "ADD " + ", ".join(parts), "ExpressionAttributeValues": values}
    if names:
        op["ExpressionAttributeNames"] = names
    return {"Update": op}


def relabel(was: str | None, now: str | None) -> dict[str, int]:
    """Label deltas of one sample's annotation going from `was` to `now`."""
    out: Counter = Counter()
    if was is not None:
        out[was] -= 1
    if now is not None:
        out[now] += 1
    return {k: v for k, v in out.items() if v}


def added(annotations: Iterable[str | None]) -> dict[str, int]:
    """Label deltas of new samples with these annotations."""
    return dict(Counter(a for a in annotations if a is not None))


def read(items: list[dict]) -> SampleCounts | None:
    """The counts in the stored shards; None unless all are there and `complete`."""
    if len(items) != SHARDS or not all(i.get("complete") for i in items):
        return None
    annotated: Counter = Counter()
    for item in items:
        annotated.update({k.removeprefix(_LABEL): int(v) for k, v in item.items()
                          if k.startswith(_LABEL)})
    return SampleCounts(sum(int(i.get("samples", 0)) for i in items),
                        {k: n for k, n in annotated.items() if n > 0})
