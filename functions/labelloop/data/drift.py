"""Drift counters in the invokes table (expiring by TTL, beside the invoke records).

- `DRIFT#<version:08d>#<ms:013d>#<nonce>`: one container's flush of a live version's counts,
  kept `LOG_DAYS`; read newest first for the recent window, oldest first to build the
  reference.
- `DRIFTREF#<version:08d>`: the version's reference (its first invokes' counts, summed once
  when there are enough), kept a year.
- `DRIFTDAY#<yyyy-mm-dd>`: the function's counts per UTC day, summed in place by each flush
  (ADD: one write per flush, not per invoke), kept `DAY_DAYS`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from labelloop.data import keys
from labelloop.data.codec import Tables, failed_condition, strip
from labelloop.drift.counts import DriftCounts

LOG_DAYS = 14
DAY_DAYS = 90
REFERENCE_DAYS = 400
_META = ("pk", "sk", "expires_at", "until")


def _chunk_prefix(version: int) -> str:
    return f"DRIFT#{version:08d}#"


def _counts(item: dict) -> DriftCounts:
    return DriftCounts.from_flat({k: v for k, v in strip(item).items() if k not in _META})


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class DriftLog:
    def __init__(self, tables: Tables):
        self._t = tables.invokes

    def append(self, fid: str, version: int, counts: DriftCounts, now: float) -> str:
        """One flush: its chunk, and the day's counters. Returns the chunk's key."""
        sk = f"{_chunk_prefix(version)}{int(now * 1000):013d}#{os.urandom(4).hex()}"
        flat = counts.to_flat()
        # Through the resource's client (thread-safe; it takes plain values as the resource
        # does): a flush runs in the invoke's deferred work.
        client = self._t.meta.client
        client.put_item(TableName=self._t.name, Item={
            "pk": keys.fn(fid), "sk": sk, "expires_at": int(now + LOG_DAYS * 86400), **flat})
        client.update_item(
            TableName=self._t.name,
            Key={"pk": keys.fn(fid), "sk": f"DRIFTDAY#{day_of(now)}"},
            UpdateExpression="ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(flat)))
                             + " SET expires_at = :e",
            ExpressionAttributeNames={f"#a{i}": k for i, k in enumerate(flat)},
            ExpressionAttributeValues={**{f":a{i}": v for i, v in enumerate(flat.values())},
                                       ":e": int(now + DAY_DAYS * 86400)})
        return sk

    def _chunks(self, fid: str, version: int, newest_first: bool,
                after: str | None = None) -> Iterator[tuple[str, DriftCounts]]:
        cond = Key("pk").eq(keys.fn(fid))
        cond &= (Key("sk").between(after + "~", _chunk_prefix(version) + "~") if after else
                 Key("sk").begins_with(_chunk_prefix(version)))
        kwargs: dict = {"KeyConditionExpression": cond, "ScanIndexForward": not newest_first}
        while True:
            resp = self._t.query(**kwargs)
            for item in resp.get("Items", []):
                yield item["sk"], _counts(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def first(self, fid: str, version: int, invokes: int) -> tuple[DriftCounts, str] | None:
        """The version's oldest chunks summed until they hold `invokes` (and the last one's
        key), or None while there are fewer."""
        total = DriftCounts()
        for sk, counts in self._chunks(fid, version, newest_first=False):
            total = total.merge(counts)
            if total.invokes >= invokes:
                return total, sk
        return None

    def recent(self, fid: str, version: int, invokes: int, after: str
               ) -> DriftCounts | None:
        """The newest chunks after key `after` summed until they hold `invokes`, or None
        while there are fewer."""
        total = DriftCounts()
        for _, counts in self._chunks(fid, version, newest_first=True, after=after):
            total = total.merge(counts)
            if total.invokes >= invokes:
                return total
        return None

    def reference(self, fid: str, version: int) -> tuple[DriftCounts, str] | None:
        item = self._t.get_item(Key={"pk": keys.fn(fid), "sk": f"DRIFTREF#{version:08d}"}
                                ).get("Item")
        return (_counts(item), item["until"]) if item else None

    def put_reference(self, fid: str, version: int, counts: DriftCounts, until: str,
                      now: float) -> tuple[DriftCounts, str]:
        """Store the reference unless another container stored one first; the one stored."""
        item = {"pk": keys.fn(fid), "sk": f"DRIFTREF#{version:08d}", "until": until,
                "expires_at": int(now + REFERENCE_DAYS * 86400), **counts.to_flat()}
        try:
            self._t.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as err:
            if not failed_condition(err):
                raise
            return self.reference(fid, version)
        return counts, until

    def days(self, fid: str, n: int, now: float | None = None) -> list[tuple[str, DriftCounts]]:
        """The last `n` UTC days' counts (days without invokes left out), oldest first."""
        now = time.time() if now is None else now
        first = day_of(now - (n - 1) * 86400)
        resp = self._t.query(KeyConditionExpression=Key("pk").eq(keys.fn(fid))
                             & Key("sk").between(f"DRIFTDAY#{first}", "DRIFTDAY#~"))
        return [(item["sk"].removeprefix("DRIFTDAY#"), _counts(item))
                for item in resp.get("Items", [])]


