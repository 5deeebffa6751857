"""A capture strategy's slot counter (`CAPTURE#<strategy>`, `used`) as transaction operations:
taking slots under the quota and releasing one are written in the same transaction as the
sample that takes or leaves the slot, so the counter never drifts from the buffer."""

from __future__ import annotations


def take(table, fk: str, strategy: str, quota: int, n: int = 1) -> dict:
    """`n` more slots of a strategy, only if they all fit under its quota."""
    return {"Update": {"TableName": table.name, "Key": {"pk": fk, "sk": f"CAPTURE#{strategy}"},
                       "UpdateExpression": "ADD used :n",
                       "ConditionExpression": "attribute_not_exists(used) OR used <= :room",
                       "ExpressionAttributeValues": {":n": n, ":room": quota - n}}}


def release(table, fk: str, strategy: str) -> dict:
    return {"Update": {"TableName": table.name, "Key": {"pk": fk, "sk": f"CAPTURE#{strategy}"},
                       "UpdateExpression": "ADD used :minus",
                       "ConditionExpression": "used > :zero",
                       "ExpressionAttributeValues": {":minus": -1, ":zero": 0}}}
