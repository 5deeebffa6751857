"""Batch-invoke job items: declared by the API, counted part by part by the batch worker."""

from __future__ import annotations

from boto3.dynamodb.conditions import Attr

from labelloop.data import keys
from labelloop.data.codec import Tables, to_ddb, update_if
from labelloop.domain import BatchJobItem


class BatchJobs:
    def __init__(self, tables: Tables):
        self._tables = tables
        self._t = tables.main

    def create(self, job: BatchJobItem) -> None:
        self._t.put_item(Item=to_ddb({"pk": keys.fn(job.function_id), "sk": f"JOB#{job.id}",
                                      **job.model_dump()}),
                         ConditionExpression=Attr("pk").not_exists())

    def get(self, fid: str, job_id: str) -> BatchJobItem:
        return self._tables.get_one(keys.fn(fid), f"JOB#{job_id}", BatchJobItem,
                                    f"batch job {job_id!r}")

    def complete_part(self, fid: str, job_id: str, part: int, parts: int, items: int,
                      failed: int, now: float, error: str | None = None) -> bool:
        """Count a finished part (`error`: one that failed for good) into its job, once: one
        UpdateItem adds the part to the job's set of done parts on condition that it is not
        in it yet, and the counters with it. False if the part was counted already. A job no
        one declared (a message sent straight to the queue) is created here, with the
        message's `parts`."""
        # Placeholders throughout: several of these names are DynamoDB reserved words.
        sets = {"function_id": ":fid", "id": ":jid", "updated_at": ":now",
                "created_at": "if_not_exists(#created_at, :now)",
                "parts": "if_not_exists(#parts, :parts)"}
        adds = {"done_parts": ":part", "parts_done": ":one", "processed": ":n", "failed": ":f"}
        values = {":fid": fid, ":jid": job_id, ":now": now, ":parts": parts, ":one": 1,
                  ":n": items, ":f": failed, ":part": {part}, ":p": part}
        if error is not None:
            sets["last_error"] = ":e"
            adds["parts_failed"] = ":one"
            values[":e"] = error[:2000]
        return update_if(
            self._t, Key={"pk": keys.fn(fid), "sk": f"JOB#{job_id}"},
            UpdateExpression="SET " + ", ".join(f"#{k} = {v}" for k, v in sets.items()) +
                             " ADD " + ", ".join(f"#{k} {v}" for k, v in adds.items()),
            ConditionExpression="NOT contains(#done_parts, :p)",
            ExpressionAttributeNames={f"#{k}": k for k in [*sets, *adds]},
            ExpressionAttributeValues=to_ddb(values))
