"""Model version items: what each version was trained on, how well it did, and whether it
was promoted (the artifacts themselves are objects: `Objects`)."""

from __future__ import annotations

from boto3.dynamodb.conditions import Key

from labelloop.data import keys
from labelloop.data.codec import Tables, query, strip, to_ddb
from labelloop.domain import ModelVersionItem
from labelloop.errors import NotFound


class ModelVersions:
    def __init__(self, tables: Tables):
        self._t = tables.main

    def put(self, mv: ModelVersionItem) -> None:
        self._t.put_item(Item=to_ddb({"pk": keys.fn(mv.function_id), "sk": keys.model(mv.version),
                                      **mv.model_dump()}))

    def get(self, fid: str, version: int) -> ModelVersionItem:
        item = self._t.get_item(Key={"pk": keys.fn(fid), "sk": keys.model(version)}).get("Item")
        if not item:
            raise NotFound(f"model version {version} not found")
        return ModelVersionItem.model_validate(strip(item))

    def list(self, fid: str) -> list[ModelVersionItem]:
        items = query(self._t, key=Key("pk").eq(keys.fn(fid)) & Key("sk").begins_with("MODEL#"))
        return [ModelVersionItem.model_validate(strip(i)) for i in items]

    def mark_promoted(self, fid: str, version: int, decision: str, promoted: bool) -> None:
        self._t.update_item(Key={"pk": keys.fn(fid), "sk": keys.model(version)},
                            UpdateExpression="SET promoted = :p, decision = :d",
                            ExpressionAttributeValues={":p": promoted, ":d": decision})

    def record_thresholds(self, fid: str, version: int, record: dict) -> None:
        self._t.update_item(Key={"pk": keys.fn(fid), "sk": keys.model(version)},
                            UpdateExpression="SET thresholds = :t",
                            ExpressionAttributeValues={":t": to_ddb(record)})
