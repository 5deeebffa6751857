"""Invoke records (the invokes table, expiring by TTL): what each invoke answered, so that
feedback on it can be compared with the prediction."""

from __future__ import annotations

from boto3.dynamodb.conditions import Attr, Key

from labelloop.data import keys
from labelloop.data.codec import Tables, fill_page, strip, to_ddb
from labelloop.domain import InvokeItem


def _item(record: InvokeItem) -> dict:
    return to_ddb({"pk": keys.fn(record.function_id), "sk": f"INVOKE#{record.sample_id}",
                   **record.model_dump()})


class Invokes:
    def __init__(self, tables: Tables):
        self._t = tables.invokes

    def put(self, record: InvokeItem) -> None:
        # Through the resource's client, which is thread-safe (the resource is not): this
        # write runs alongside the invoke's capture decision (usecases/invoke.py).
        self._t.meta.client.put_item(TableName=self._t.name, Item=_item(record))

    def put_many(self, records: list[InvokeItem]) -> None:
        """Many records in BatchWriteItem calls of 25 (a batch-invoke part)."""
        with self._t.batch_writer() as batch:
            for r in records:
                batch.put_item(Item=_item(r))

    def get(self, fid: str, sid: str, now: float) -> InvokeItem | None:
        """None when absent or expired (DynamoDB deletes expired items late, moto never)."""
        item = self._t.get_item(Key={"pk": keys.fn(fid), "sk": f"INVOKE#{sid}"},
                                ConsistentRead=True).get("Item")
        if not item or int(item["expires_at"]) <= now:
            return None
        return InvokeItem.model_validate(strip(item))

    def page(self, fid: str, limit: int, after: str | None, now: float
             ) -> tuple[list[InvokeItem], str | None]:
        """Stored invokes, newest first (sample ids are time-ordered); expired ones are left
        out, since DynamoDB deletes them up to days late. Returns the page and the id to
        continue after."""
        kwargs: dict = {"KeyConditionExpression": Key("pk").eq(keys.fn(fid))
                        & Key("sk").begins_with("INVOKE#"), "ScanIndexForward": False,
                        "FilterExpression": Attr("expires_at").gt(int(now))}
        if after:
            kwargs["ExclusiveStartKey"] = {"pk": keys.fn(fid), "sk": f"INVOKE#{after}"}
        items, more = fill_page(self._t, kwargs, limit)
        records = [InvokeItem.model_validate(i) for i in items]
        return records, (records[-1].sample_id if more else None)
