"""Label items, each with a name-claim item that keeps names unique per function."""

from __future__ import annotations

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from labelloop.data import keys
from labelloop.data.codec import Tables, failed_condition, put_op, query, strip
from labelloop.domain import LabelItem
from labelloop.errors import Conflict


class Labels:
    def __init__(self, tables: Tables):
        self._tables = tables
        self._t = tables.main

    def create(self, label: LabelItem) -> None:
        """The label and its name claim in one transaction: names are unique."""
        name_key = {"pk": keys.fn(label.function_id), "sk": f"LABELNAME#{label.name}"}
        try:
            self._tables.transact([
                put_op(self._t, {**name_key, "label_id": label.id}),
                put_op(self._t, {"pk": keys.fn(label.function_id), "sk": f"LABEL#{label.id}",
                                 **label.model_dump()}),
            ])
        except ClientError as err:
            if not failed_condition(err):
                raise
            existing = self._t.get_item(Key=name_key, ConsistentRead=True).get("Item")
            raise Conflict(f"a label named {label.name!r} exists",
                           existingLabelId=existing["label_id"] if existing else None) from err

    def get(self, fid: str, lid: str) -> LabelItem:
        return self._tables.get_one(keys.fn(fid), f"LABEL#{lid}", LabelItem, f"label {lid!r}")

    def list(self, fid: str, consistent: bool = True) -> list[LabelItem]:
        items = query(self._t, key=Key("pk").eq(keys.fn(fid)) & Key("sk").begins_with("LABEL#"),
                      consistent=consistent)
        return [LabelItem.model_validate(strip(i)) for i in items]

    def replace(self, old: LabelItem, new: LabelItem) -> None:
        """Rewrite a label; a rename moves its name claim in the same transaction."""
        fk = keys.fn(new.function_id)
        ops = [put_op(self._t, {"pk": fk, "sk": f"LABEL#{new.id}", **new.model_dump()},
                      condition="attribute_exists(pk)")]
        if old.name != new.name:
            ops.append(put_op(self._t, {"pk": fk, "sk": f"LABELNAME#{new.name}",
                                        "label_id": new.id}))
            ops.append({"Delete": {"TableName": self._t.name,
                                   "Key": {"pk": fk, "sk": f"LABELNAME#{old.name}"}}})
        self._tables.transact(ops, on_condition=lambda: Conflict(
            f"a label named {new.name!r} exists"))

    def delete(self, label: LabelItem) -> None:
        fk = keys.fn(label.function_id)
        with self._t.batch_writer() as batch:
            batch.delete_item(Key={"pk": fk, "sk": f"LABEL#{label.id}"})
            batch.delete_item(Key={"pk": fk, "sk": f"LABELNAME#{label.name}"})
