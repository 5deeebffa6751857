"""On a local stack's start, no Lambda runs: Powertools idempotency records still "in progress"
belong to invocations killed with the previous process.

On AWS such a record expires with the invocation's timeout (15 minutes), before SQS shows its
message again (16 minutes). Locally, a restart makes in-flight messages visible at once (see
`local.aws`); left in place, the record would refuse every redelivery as "already in progress"
until the message is parked in the DLQ, and the batch job would never end.
"""

from __future__ import annotations

_INPROGRESS = "INPROGRESS"


def release(table) -> int:
    """Delete the in-progress records of the idempotency `table` (a boto3 Table); how many."""
    from boto3.dynamodb.conditions import Attr

    released = 0
    kwargs: dict = {"FilterExpression": Attr("status").eq(_INPROGRESS),
                    "ProjectionExpression": "id"}
    while True:
        page = table.scan(**kwargs)
        for item in page.get("Items", []):
            try:
                table.delete_item(Key={"id": item["id"]},
                                  ConditionExpression=Attr("status").eq(_INPROGRESS))
                released += 1
            except table.meta.client.exceptions.ConditionalCheckFailedException:
                pass  # completed meanwhile
        if "LastEvaluatedKey" not in page:
            return released
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
