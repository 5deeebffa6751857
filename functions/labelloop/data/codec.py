"""DynamoDB at the edge: Python values to and from its types, paged queries, conditional
writes whose failed condition becomes a domain error, and transactions.

`Tables` is what every repository of this package holds: the main table, the invokes table
and the resource they share (boto3 resources are not thread-safe; one per container, used
under the GIL, as `container.py` builds it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from labelloop.errors import NotFound

INDEX_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
# A transaction another one kept from its items is tried this many times, waiting up to
# CONFLICT_WAIT seconds (doubling) in between.
CONFLICT_ATTEMPTS = 4
CONFLICT_WAIT = 0.02


def to_ddb(value: Any) -> Any:
    if isinstance(value, float):
        # DynamoDB holds no magnitude below 1e-130 (boto3 raises Underflow): such a number is
        # stored as ±1e-130, the nearest it holds, so that it keeps its sign (0 < x stays so).
        if 0 < abs(value) < 1e-130:
            return Decimal("1e-130").copy_sign(Decimal(repr(value)))
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: to_ddb(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_ddb(v) for v in value]
    return value


def from_ddb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_ddb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_ddb(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3 Binary
        return bytes(value.value)
    return value


def strip(item: dict) -> dict:
    """An item's attributes without its key and index attributes."""
    return {k: v for k, v in from_ddb(item).items() if k not in INDEX_KEYS}


def conflicted(err: ClientError) -> bool:
    """A transaction cancelled because another one was writing its items, with no condition
    of its own failing: the same write can succeed a moment later."""
    if err.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    codes = {r.get("Code") for r in err.response.get("CancellationReasons") or []}
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def failed_condition(err: ClientError) -> bool:
    return err.response["Error"]["Code"] in ("ConditionalCheckFailedException",
                                             "TransactionCanceledException")


def put_op(table, item: dict, condition: str = "attribute_not_exists(pk)",
           values: dict | None = None) -> dict:
    """A transaction's Put (the resource's client serialises Python values itself)."""
    put = {"TableName": table.name, "ConditionExpression": condition, "Item": to_ddb(item)}
    if values:
        put["ExpressionAttributeValues"] = values
    return {"Put": put}


def query(table, key, index: str | None = None, projection: str | None = None,
          consistent: bool = False) -> Iterator[dict]:
    """Every item of a query, page after page (raw: strip or decode them)."""
    kwargs: dict = {"KeyConditionExpression": key}
    if index:
        kwargs["IndexName"] = index
    elif consistent:
        kwargs["ConsistentRead"] = True
    if projection:  # placeholders: `data`, `name` and many more are reserved words
        names = [n.strip() for n in projection.split(",")]
        kwargs["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(names)))
        kwargs["ExpressionAttributeNames"] = {f"#p{i}": n for i, n in enumerate(names)}
    while True:
        resp = table.query(**kwargs)
        yield from resp.get("Items", [])
        if "LastEvaluatedKey" not in resp:
            return
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def fill_page(table, kwargs: dict, limit: int) -> tuple[list[dict], bool]:
    """Up to `limit` items of a query, reading on past pages a filter thinned out, and
    whether a full page may have more after it."""
    items: list[dict] = []
    while len(items) < limit:
        resp = table.query(Limit=limit - len(items), **kwargs)
        items += [strip(i) for i in resp.get("Items", [])]
        if "LastEvaluatedKey" not in resp:
            return items, False
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return items, True


def update(table, key: dict, expr: str, names: dict | None, values: dict, condition: str,
           error: Callable[[], Exception], returns: str = "NONE") -> dict:
    """An UpdateItem whose failed condition raises `error()`."""
    kwargs: dict = {"Key": key, "UpdateExpression": expr, "ConditionExpression": condition,
                    "ExpressionAttributeValues": values, "ReturnValues": returns}
    if names:
        kwargs["ExpressionAttributeNames"] = names
    try:
        return table.update_item(**kwargs).get("Attributes", {})
    except ClientError as err:
        if failed_condition(err):
            raise error() from err
        raise


def update_if(table, **kwargs) -> bool:
    """An UpdateItem that may find its condition false: whether it wrote."""
    try:
        table.update_item(**kwargs)
        return True
    except ClientError as err:
        if failed_condition(err):
            return False
        raise


@dataclass(frozen=True)
class Tables:
    resource: Any  # boto3 DynamoDB resource
    main: Any  # its Table objects
    invokes: Any

    @classmethod
    def of(cls, resource, main: str, invokes: str) -> Tables:
        return cls(resource, resource.Table(main), resource.Table(invokes))

    def transact(self, ops: list[dict], on_condition: Callable[[], Exception] | None = None
                 ) -> None:
        """One TransactWriteItems. Cancelled only because another transaction was writing
        one of its items (a counter's, often): written again after a short random wait, up
        to `CONFLICT_ATTEMPTS` times. A failed condition raises `on_condition()`."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self.resource.meta.client.transact_write_items(TransactItems=ops)
                return
            except ClientError as err:
                if conflicted(err) and attempt < CONFLICT_ATTEMPTS - 1:
                    time.sleep(random.uniform(0, CONFLICT_WAIT * 2 ** attempt))
                    continue
                if on_condition is not None and failed_condition(err):
                    raise on_condition() from err
                raise

    def get_one(self, pk: str, sk: str, model, what: str):
        """The item (read consistently) as `model`, or NotFound naming `what`."""
        item = self.main.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        if not item:
            raise NotFound(f"{what} not found")
        return model.model_validate(strip(item))
