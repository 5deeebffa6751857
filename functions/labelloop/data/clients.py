"""API clients (their salted secret) and the failed-token counters that rate-limit guessing."""

from __future__ import annotations

from labelloop.data import keys
from labelloop.data.codec import Tables, strip, to_ddb
from labelloop.domain import ClientItem


class Clients:
    def __init__(self, tables: Tables):
        self._t = tables.main

    def put(self, client: ClientItem) -> None:
        self._t.put_item(Item=to_ddb({"pk": keys.client(client.id), "sk": "CLIENT",
                                      **client.model_dump()}))

    def get(self, client_id: str) -> ClientItem | None:
        item = self._t.get_item(Key={"pk": keys.client(client_id), "sk": "CLIENT"}).get("Item")
        return ClientItem.model_validate(strip(item)) if item else None

    def token_failures(self, client_id: str, window: int) -> int:
        """Failed token requests for `client_id` in the window starting at epoch `window`."""
        item = self._t.get_item(Key={"pk": keys.client(client_id),
                                     "sk": f"FAILS#{window}"}).get("Item")
        return int(item["count"]) if item else 0

    def count_token_failure(self, client_id: str, window: int, expires_at: int) -> int:
        """One more failure in the window (atomically); the count after it."""
        out = self._t.update_item(
            Key={"pk": keys.client(client_id), "sk": f"FAILS#{window}"},
            UpdateExpression="ADD #c :one SET expires_at = :exp",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":one": 1, ":exp": expires_at}, ReturnValues="UPDATED_NEW")
        return int(out["Attributes"]["count"])
