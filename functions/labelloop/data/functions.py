"""Function items: their settings, the `live` pointer (the only mutable thing about a model),
the version counter, and the training lease that keeps one run per function at a time."""

from __future__ import annotations

import time

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from labelloop.data import keys, sample_counts
from labelloop.data.codec import (
    Tables,
    failed_condition,
    put_op,
    query,
    strip,
    to_ddb,
    update,
    update_if,
)
from labelloop.domain import FunctionItem
from labelloop.errors import Busy, Conflict, NotFound


class Functions:
    def __init__(self, tables: Tables):
        self._tables = tables
        self._t = tables.main

    def _key(self, fid: str) -> dict:
        return {"pk": keys.fn(fid), "sk": "FUNCTION"}

    def put(self, fn: FunctionItem) -> None:
        """A new function, with its sample counts (`sample_counts`)."""
        self._tables.transact([
            put_op(self._t, {**self._key(fn.id), "gsi1pk": keys.client(fn.client),
                             "gsi1sk": keys.fn(fn.id), **fn.model_dump()}),
            *sample_counts.created(self._t, keys.fn(fn.id))],
            on_condition=lambda: Conflict(f"function {fn.id!r} exists"))

    def get(self, fid: str) -> FunctionItem:
        return self._tables.get_one(keys.fn(fid), "FUNCTION", FunctionItem, f"function {fid!r}")

    def find(self, fid: str) -> FunctionItem | None:
        try:
            return self.get(fid)
        except NotFound:
            return None

    def list(self, client: str) -> list[FunctionItem]:
        items = query(self._t, index="gsi1", key=Key("gsi1pk").eq(keys.client(client)))
        return [FunctionItem.model_validate(strip(i)) for i in items]

    def update(self, fid: str, **fields) -> None:
        update(self._t, self._key(fid), "SET " + ", ".join(f"#{k} = :{k}" for k in fields),
               {f"#{k}": k for k in fields}, {f":{k}": to_ddb(v) for k, v in fields.items()},
               "attribute_exists(pk)", lambda: NotFound(f"function {fid!r} not found"))

    def delete(self, fid: str) -> None:
        """Every item under the function, in both tables (its objects: `Objects`)."""
        for table in (self._t, self._tables.invokes):
            found = [{"pk": i["pk"], "sk": i["sk"]} for i in query(
                table, key=Key("pk").eq(keys.fn(fid)), projection="pk, sk")]
            with table.batch_writer() as batch:
                for k in found:
                    batch.delete_item(Key=k)

    def bury(self, fid: str) -> None:
        """The deleted function's tombstone: queued batch messages for it are dropped quietly
        (a function that never existed is an error: its messages end in the DLQ)."""
        self._t.put_item(Item=to_ddb({"pk": f"DELETED#{fid}", "sk": "FUNCTION",
                                      "deleted_at": time.time()}))

    def deleted(self, fid: str) -> bool:
        return "Item" in self._t.get_item(Key={"pk": f"DELETED#{fid}", "sk": "FUNCTION"},
                                          ConsistentRead=True)

    # -- the live pointer and the version counter --------------------------------------------

    def next_model_version(self, fid: str) -> int:
        attrs = update(self._t, self._key(fid), "ADD next_version :one", None, {":one": 1},
                       "attribute_exists(pk)", lambda: NotFound(f"function {fid!r} not found"),
                       returns="UPDATED_NEW")
        return int(attrs["next_version"])

    def set_live(self, fid: str, version: int, expected: int | None,
                 history: list[int]) -> None:
        """Move the `live` pointer, if it still points where the caller saw it."""
        cond = "attribute_not_exists(live)" if expected is None else "live = :expected"
        values = {":v": version, ":h": history}
        if expected is not None:
            values[":expected"] = expected
        update(self._t, self._key(fid), "SET live = :v, live_history = :h", None, values,
               f"attribute_exists(pk) AND {cond}",
               lambda: Conflict("the live model changed meanwhile; retry"))

    # -- the training lease --------------------------------------------------------------------

    def request_training(self, fid: str, now: float, stale_before: float) -> bool:
        """Mark a training run as wanted. True if this call should enqueue it: nothing was
        pending yet, or the pending request is so old that its message must have been lost."""
        return update_if(
            self._t, Key=self._key(fid),
            UpdateExpression="SET train_pending = :t, train_requested_at = :now",
            ConditionExpression="attribute_exists(pk) AND (train_pending = :f OR "
                                "attribute_not_exists(train_pending) OR "
                                "train_requested_at < :stale)",
            ExpressionAttributeValues={":t": True, ":f": False, ":now": to_ddb(now),
                                       ":stale": to_ddb(stale_before)})

    def begin_training(self, fid: str, now: float, stale_before: float) -> FunctionItem | None:
        """Take the pending request and the function's training lease: changes from now on
        queue a new run. None if nothing is pending (a duplicate delivery); Busy while another
        run holds the lease (taken at or after stale_before); NotFound if deleted."""
        try:
            attrs = self._t.update_item(
                Key=self._key(fid),
                UpdateExpression="SET train_pending = :f, training_since = :now "
                                 "REMOVE last_train_error",
                ConditionExpression="train_pending = :t AND (attribute_not_exists("
                                    "training_since) OR training_since < :stale)",
                ExpressionAttributeValues={":t": True, ":f": False, ":now": to_ddb(now),
                                           ":stale": to_ddb(stale_before)},
                ReturnValues="ALL_NEW")["Attributes"]
            return FunctionItem.model_validate(strip(attrs))
        except ClientError as err:
            if not failed_condition(err):
                raise
        fn = self.get(fid)  # NotFound if deleted
        if fn.training_since is not None and fn.training_since >= stale_before:
            raise Busy(f"function {fid!r} is training since {fn.training_since}")
        return None

    def end_training(self, fid: str, started: float, error: str | None = None) -> None:
        """Give the lease back, if this run still holds it (a run taken for dead may not:
        then, as when the function was deleted, there is nothing to do)."""
        expr = "REMOVE training_since" + (" SET last_train_error = :e" if error else "")
        update_if(self._t, Key=self._key(fid), UpdateExpression=expr,
                  ConditionExpression="training_since = :started",
                  ExpressionAttributeValues={":started": to_ddb(started),
                                             **({":e": error[:2000]} if error else {})})
