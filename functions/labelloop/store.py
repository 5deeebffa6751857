"""The one data-access module: every DynamoDB, S3, SQS and ECS call of the app is made here
(`container.py` builds the clients and reads the signing key; `resources.py` creates the
resources for the local stack and the emulator).

DynamoDB errors become domain errors at this edge (a failed condition is a `Conflict`, a
missing item a `NotFound`). Whole items cross this edge as the pydantic models of
`labelloop.domain`; projected reads (a few attributes of many items, e.g. embeddings) come
back as plain dicts. Layout and access patterns: docs/storage.md.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from labelloop.capture.decide import Slot, Take
from labelloop.domain import (
    BatchJobItem,
    ClientItem,
    FunctionItem,
    InvokeItem,
    LabelItem,
    ModelVersionItem,
    SampleItem,
)
from labelloop.errors import Busy, Conflict, NotFound

BATCH_PREFIX = "batches/"  # batch-invoke results: batches/<fid>/<jobId>/<part:05d>.jsonl
SQS_MAX_BYTES = 256 * 1024


def _fn(fid: str) -> str:
    return f"FN#{fid}"


def _to_ddb(value: Any) -> Any:
    if isinstance(value, float):
        # DynamoDB holds no magnitude below 1e-130 (boto3 raises Underflow): such a number is
        # stored as ±1e-130, the nearest it holds, so that it keeps its sign (0 < x stays so).
        if 0 < abs(value) < 1e-130:
            return Decimal("1e-130").copy_sign(Decimal(repr(value)))
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_ddb(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_ddb(v) for v in value]
    return value


def _from_ddb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_ddb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_ddb(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3 Binary
        return bytes(value.value)
    return value


def _strip(item: dict) -> dict:
    return {k: v for k, v in _from_ddb(item).items()
            if k not in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")}


def _fill_page(table, kwargs: dict, limit: int) -> tuple[list[dict], bool]:
    """Up to `limit` items of a query, reading on past pages a filter thinned out, and
    whether a full page may have more after it."""
    items: list[dict] = []
    while len(items) < limit:
        resp = table.query(Limit=limit - len(items), **kwargs)
        items += [_strip(i) for i in resp.get("Items", [])]
        if "LastEvaluatedKey" not in resp:
            return items, False
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return items, True


def _buf(fid: str, strategy: str) -> str:
    return f"BUF#{fid}#{strategy}"


def _priority_key(priority: float | None, sid: str) -> str:
    # Priorities are in [0, 1]: fixed-point text sorts as the number does.
    return f"{priority or 0.0:.9f}#{sid}"


def _sample_item(sample: SampleItem) -> dict:
    item = {"pk": _fn(sample.function_id), "sk": f"SAMPLE#{sample.id}", **sample.model_dump()}
    if sample.external_id:
        item |= {"gsi1pk": f"EXT#{sample.function_id}#{sample.external_id}",
                 "gsi1sk": sample.id}
    if sample.buffer:
        item |= {"gsi2pk": _buf(sample.function_id, sample.buffer),
                 "gsi2sk": _priority_key(sample.priority, sample.id)}
    return item


def _failed_condition(err: ClientError) -> bool:
    return err.response["Error"]["Code"] in ("ConditionalCheckFailedException",
                                             "TransactionCanceledException")


# The Fargate training task reads its training message from this variable.
TRAINING_MESSAGE_ENV = "LABELLOOP_TRAINING_MESSAGE"


@dataclass(frozen=True)
class TrainingTask:
    cluster: str
    task_definition: str
    container: str
    subnets: list[str]
    security_group: str


class Store:
    def __init__(self, dynamodb, s3, sqs, table: str, invokes_table: str, bucket: str,
                 training_queue_url: str, ecs=None):
        self._ecs = ecs  # only where the Fargate training path is configured
        self._ddb = dynamodb  # boto3 DynamoDB resource
        self.table = dynamodb.Table(table)
        self.invokes = dynamodb.Table(invokes_table)
        self._s3 = s3
        self._sqs = sqs
        self.bucket = bucket
        self.training_queue_url = training_queue_url

    # -- clients ------------------------------------------------------------------------

    def put_client(self, client: ClientItem) -> None:
        self.table.put_item(Item=_to_ddb(
            {"pk": f"CLIENT#{client.id}", "sk": "CLIENT", **client.model_dump()}))

    def get_client(self, client_id: str) -> ClientItem | None:
        item = self.table.get_item(Key={"pk": f"CLIENT#{client_id}", "sk": "CLIENT"}).get("Item")
        return ClientItem.model_validate(_strip(item)) if item else None

    def token_failures(self, client_id: str, window: int) -> int:
        """Failed token requests for `client_id` in the window starting at epoch `window`."""
        item = self.table.get_item(Key={"pk": f"CLIENT#{client_id}",
                                        "sk": f"FAILS#{window}"}).get("Item")
        return int(item["count"]) if item else 0

    def count_token_failure(self, client_id: str, window: int, expires_at: int) -> int:
        """One more failure in the window (atomically); the count after it."""
        out = self.table.update_item(
            Key={"pk": f"CLIENT#{client_id}", "sk": f"FAILS#{window}"},
            UpdateExpression="ADD #c :one SET expires_at = :exp",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":one": 1, ":exp": expires_at}, ReturnValues="UPDATED_NEW")
        return int(out["Attributes"]["count"])

    # -- functions ----------------------------------------------------------------------

    def put_function(self, fn: FunctionItem) -> None:
        self.table.put_item(Item=_to_ddb({
            "pk": _fn(fn.id), "sk": "FUNCTION", "gsi1pk": f"CLIENT#{fn.client}",
            "gsi1sk": f"FN#{fn.id}", **fn.model_dump()}),
            ConditionExpression=Attr("pk").not_exists())

    def get_function(self, fid: str) -> FunctionItem:
        return self._get_one("FUNCTION", fid, FunctionItem, f"function {fid!r}")

    def find_function(self, fid: str) -> FunctionItem | None:
        try:
            return self.get_function(fid)
        except NotFound:
            return None

    def list_functions(self, client: str) -> list[FunctionItem]:
        items = self._query(self.table, index="gsi1",
                            key=Key("gsi1pk").eq(f"CLIENT#{client}"))
        return [FunctionItem.model_validate(_strip(i)) for i in items]

    def update_function(self, fid: str, **fields) -> None:
        names = {f"#{k}": k for k in fields}
        self._update(self.table, {"pk": _fn(fid), "sk": "FUNCTION"},
                     "SET " + ", ".join(f"#{k} = :{k}" for k in fields),
                     names, {f":{k}": _to_ddb(v) for k, v in fields.items()},
                     "attribute_exists(pk)", f"function {fid!r} not found", NotFound)

    def delete_function(self, fid: str) -> None:
        """Everything under the function: items, invoke records, model artifacts, batch
        results; then a tombstone, so that queued batch messages for it are dropped quietly
        (a function that never existed is an error: its messages end in the DLQ)."""
        for table in (self.table, self.invokes):
            keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._query(
                table, key=Key("pk").eq(_fn(fid)), projection="pk, sk")]
            with table.batch_writer() as batch:
                for k in keys:
                    batch.delete_item(Key=k)
        self._delete_prefix(f"functions/{fid}/")
        self._delete_prefix(f"{BATCH_PREFIX}{fid}/")
        self.table.put_item(Item=_to_ddb({"pk": f"DELETED#{fid}", "sk": "FUNCTION",
                                          "deleted_at": time.time()}))

    def function_deleted(self, fid: str) -> bool:
        return "Item" in self.table.get_item(Key={"pk": f"DELETED#{fid}", "sk": "FUNCTION"},
                                             ConsistentRead=True)

    # -- training state -----------------------------------------------------------------

    def request_training(self, fid: str, now: float, stale_before: float) -> bool:
        """Mark a training run as wanted. True if this call should enqueue it: nothing was
        pending yet, or the pending request is so old that its message must have been lost."""
        try:
            self.table.update_item(
                Key={"pk": _fn(fid), "sk": "FUNCTION"},
                UpdateExpression="SET train_pending = :t, train_requested_at = :now",
                ConditionExpression="attribute_exists(pk) AND (train_pending = :f OR "
                                    "attribute_not_exists(train_pending) OR "
                                    "train_requested_at < :stale)",
                ExpressionAttributeValues={":t": True, ":f": False, ":now": _to_ddb(now),
                                           ":stale": _to_ddb(stale_before)})
            return True
        except ClientError as err:
            if _failed_condition(err):
                return False
            raise

    def begin_training(self, fid: str, now: float, stale_before: float) -> FunctionItem | None:
        """Take the pending request and the function's training lease: changes from now on
        queue a new run. None if nothing is pending (a duplicate delivery); Busy while another
        run holds the lease (taken at or after stale_before); NotFound if deleted."""
        try:
            attrs = self.table.update_item(
                Key={"pk": _fn(fid), "sk": "FUNCTION"},
                UpdateExpression="SET train_pending = :f, training_since = :now "
                                 "REMOVE last_train_error",
                ConditionExpression="train_pending = :t AND (attribute_not_exists("
                                    "training_since) OR training_since < :stale)",
                ExpressionAttributeValues={":t": True, ":f": False, ":now": _to_ddb(now),
                                           ":stale": _to_ddb(stale_before)},
                ReturnValues="ALL_NEW")["Attributes"]
            return FunctionItem.model_validate(_strip(attrs))
        except ClientError as err:
            if not _failed_condition(err):
                raise
        fn = self.get_function(fid)  # NotFound if deleted
        if fn.training_since is not None and fn.training_since >= stale_before:
            raise Busy(f"function {fid!r} is training since {fn.training_since}")
        return None

    def end_training(self, fid: str, started: float, error: str | None = None) -> None:
        """Give the lease back, if this run still holds it (a run taken for dead may not)."""
        expr = "REMOVE training_since" + (" SET last_train_error = :e" if error else "")
        try:
            self.table.update_item(
                Key={"pk": _fn(fid), "sk": "FUNCTION"}, UpdateExpression=expr,
                ConditionExpression="training_since = :started",
                ExpressionAttributeValues={":started": _to_ddb(started),
                                           **({":e": error[:2000]} if error else {})})
        except ClientError as err:
            if not _failed_condition(err):  # deleted, or the lease moved on: nothing to do
                raise

    def send_training_message(self, body: dict, delay_seconds: int) -> None:
        self._sqs.send_message(QueueUrl=self.training_queue_url, MessageBody=json.dumps(body),
                               DelaySeconds=min(max(delay_seconds, 0), 900))

    # -- model versions -----------------------------------------------------------------

    def next_model_version(self, fid: str) -> int:
        attrs = self._update(self.table, {"pk": _fn(fid), "sk": "FUNCTION"},
                             "ADD next_version :one", None, {":one": 1},
                             "attribute_exists(pk)", f"function {fid!r} not found", NotFound,
                             returns="UPDATED_NEW")
        return int(attrs["next_version"])

    def put_model_version(self, mv: ModelVersionItem) -> None:
        self.table.put_item(Item=_to_ddb({"pk": _fn(mv.function_id),
                                          "sk": f"MODEL#{mv.version:08d}", **mv.model_dump()}))

    def count_samples(self, fid: str, at_least: int) -> int:
        """How many samples the function has, counted up to `at_least` (then it stops)."""
        kwargs = {"KeyConditionExpression": Key("pk").eq(_fn(fid))
                  & Key("sk").begins_with("SAMPLE#"), "Select": "COUNT"}
        count = 0
        while count < at_least:
            resp = self.table.query(**kwargs)
            count += resp["Count"]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return count

    def start_training_task(self, task: TrainingTask, message_json: str) -> str:
        """Run the Fargate training task with this message; its task ARN."""
        resp = self._ecs.run_task(
            cluster=task.cluster, taskDefinition=task.task_definition, launchType="FARGATE",
            count=1, networkConfiguration={"awsvpcConfiguration": {
                "subnets": task.subnets, "securityGroups": [task.security_group],
                # Public subnet, no NAT: the public IP is how it reaches AWS's APIs.
                "assignPublicIp": "ENABLED"}},
            overrides={"containerOverrides": [{"name": task.container, "environment": [
                {"name": TRAINING_MESSAGE_ENV, "value": message_json}]}]})
        if resp.get("failures") or not resp.get("tasks"):
            raise RuntimeError(f"RunTask failed: {resp.get('failures')}")
        return resp["tasks"][0]["taskArn"]

    def get_model_version(self, fid: str, version: int) -> ModelVersionItem:
        item = self.table.get_item(Key={"pk": _fn(fid), "sk": f"MODEL#{version:08d}"}).get("Item")
        if not item:
            raise NotFound(f"model version {version} not found")
        return ModelVersionItem.model_validate(_strip(item))

    def list_model_versions(self, fid: str) -> list[ModelVersionItem]:
        items = self._query(self.table, key=Key("pk").eq(_fn(fid)) & Key("sk").begins_with(
            "MODEL#"))
        return [ModelVersionItem.model_validate(_strip(i)) for i in items]

    def set_live(self, fid: str, version: int, expected: int | None,
                 history: list[int]) -> None:
        """Move the `live` pointer, if it still points where the caller saw it."""
        cond = "attribute_not_exists(live)" if expected is None else "live = :expected"
        values = {":v": version, ":h": history}
        if expected is not None:
            values[":expected"] = expected
        self._update(self.table, {"pk": _fn(fid), "sk": "FUNCTION"},
                     "SET live = :v, live_history = :h", None, values,
                     f"attribute_exists(pk) AND {cond}",
                     "the live model changed meanwhile; retry", Conflict)

    def mark_promoted(self, fid: str, version: int, decision: str, promoted: bool) -> None:
        self.table.update_item(Key={"pk": _fn(fid), "sk": f"MODEL#{version:08d}"},
                               UpdateExpression="SET promoted = :p, decision = :d",
                               ExpressionAttributeValues={":p": promoted, ":d": decision})

    def record_thresholds(self, fid: str, version: int, record: dict) -> None:
        self.table.update_item(Key={"pk": _fn(fid), "sk": f"MODEL#{version:08d}"},
                               UpdateExpression="SET thresholds = :t",
                               ExpressionAttributeValues={":t": _to_ddb(record)})

    def put_artifact(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def get_artifact(self, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise NotFound("model artifact not found") from err  # keys stay inside
            raise

    def download_object(self, uri: str, dest: Path) -> None:
        """An object by s3:// URI to a local file (the accurate encoder's model, an asset)."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self._s3.download_file(bucket, key, str(dest))

    # -- labels -------------------------------------------------------------------------

    def create_label(self, label: LabelItem) -> None:
        """The label and a name-claim item in one transaction: names are unique."""
        name_key = {"pk": _fn(label.function_id), "sk": f"LABELNAME#{label.name}"}
        try:
            self._ddb.meta.client.transact_write_items(TransactItems=[
                self._put(self.table, {**name_key, "label_id": label.id}),
                self._put(self.table, {"pk": _fn(label.function_id), "sk": f"LABEL#{label.id}",
                                       **label.model_dump()}),
            ])
        except ClientError as err:
            if not _failed_condition(err):
                raise
            existing = self.table.get_item(Key=name_key, ConsistentRead=True).get("Item")
            raise Conflict(f"a label named {label.name!r} exists",
                           existingLabelId=existing["label_id"] if existing else None) from err

    def get_label(self, fid: str, lid: str) -> LabelItem:
        return self._get_one(f"LABEL#{lid}", fid, LabelItem, f"label {lid!r}")

    def list_labels(self, fid: str, consistent: bool = True) -> list[LabelItem]:
        items = self._query(self.table, key=Key("pk").eq(_fn(fid)) & Key("sk").begins_with(
            "LABEL#"), consistent=consistent)
        return [LabelItem.model_validate(_strip(i)) for i in items]

    def replace_label(self, old: LabelItem, new: LabelItem) -> None:
        """Rewrite a label; a rename moves its name claim in the same transaction."""
        fk = _fn(new.function_id)
        ops = [self._put(self.table, {"pk": fk, "sk": f"LABEL#{new.id}", **new.model_dump()},
                         condition="attribute_exists(pk)")]
        if old.name != new.name:
            ops.append(self._put(self.table, {"pk": fk, "sk": f"LABELNAME#{new.name}",
                                              "label_id": new.id}))
            ops.append({"Delete": {"TableName": self.table.name,
                                   "Key": {"pk": fk, "sk": f"LABELNAME#{old.name}"}}})
        try:
            self._ddb.meta.client.transact_write_items(TransactItems=ops)
        except ClientError as err:
            if _failed_condition(err):
                raise Conflict(f"a label named {new.name!r} exists") from err
            raise

    def delete_label(self, label: LabelItem) -> None:
        fk = _fn(label.function_id)
        with self.table.batch_writer() as batch:
            batch.delete_item(Key={"pk": fk, "sk": f"LABEL#{label.id}"})
            batch.delete_item(Key={"pk": fk, "sk": f"LABELNAME#{label.name}"})

    # -- samples ------------------------------------------------------------------------

    def create_sample(self, sample: SampleItem) -> None:
        """The sample and its data-hash claim in one transaction: identical data posted twice,
        even at once, ends as one sample; the loser gets a Conflict naming the winner."""
        fk = _fn(sample.function_id)
        hash_key = {"pk": fk, "sk": f"HASH#{sample.data_hash}"}
        try:
            self._ddb.meta.client.transact_write_items(TransactItems=[
                # A claim left by a dismissed capture only stops captures, not samples.
                self._put(self.table, {**hash_key, "sample_id": sample.id},
                          condition="attribute_not_exists(pk) OR dismissed = :t",
                          values={":t": True}),
                self._put(self.table, _sample_item(sample))])
        except ClientError as err:
            if not _failed_condition(err):
                raise
            raise self._duplicate(hash_key) from err

    def _duplicate(self, hash_key: dict) -> Conflict:
        existing = self.table.get_item(Key=hash_key, ConsistentRead=True).get("Item")
        return Conflict("a sample with the same data exists",
                        existingSampleId=existing.get("sample_id") if existing else None)

    def get_sample(self, fid: str, sid: str) -> SampleItem:
        return self._get_one(f"SAMPLE#{sid}", fid, SampleItem, f"sample {sid!r}")

    def get_samples(self, fid: str, sids: list[str]) -> list[SampleItem]:
        """Many samples in one BatchGetItem (at most 100), in the order asked; ones that no
        longer exist are left out."""
        keys = [{"pk": _fn(fid), "sk": f"SAMPLE#{sid}"} for sid in dict.fromkeys(sids)]
        if len(keys) > 100:
            raise ValueError("at most 100 samples per call")
        found: dict[str, SampleItem] = {}
        request = {self.table.name: {"Keys": keys, "ConsistentRead": True}} if keys else {}
        while request:
            resp = self._ddb.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self.table.name, []):
                sample = SampleItem.model_validate(_strip(item))
                found[sample.id] = sample
            request = resp.get("UnprocessedKeys") or {}
        return [found[sid] for sid in sids if sid in found]

    def page_samples(self, fid: str, limit: int, descending: bool, after: str | None,
                     external_id: str | None = None, origin: str | None = None
                     ) -> tuple[list[SampleItem], str | None]:
        """One page in creation order; returns the samples and the id to continue after.
        With `origin`, only samples of that origin (read on until the page is full)."""
        if external_id is not None:
            kwargs = {"IndexName": "gsi1",
                      "KeyConditionExpression": Key("gsi1pk").eq(f"EXT#{fid}#{external_id}")}
            if after:
                kwargs["ExclusiveStartKey"] = {"pk": _fn(fid), "sk": f"SAMPLE#{after}",
                                               "gsi1pk": f"EXT#{fid}#{external_id}",
                                               "gsi1sk": after}
        else:
            kwargs = {"KeyConditionExpression": Key("pk").eq(_fn(fid)) & Key("sk").begins_with(
                "SAMPLE#")}
            if after:
                kwargs["ExclusiveStartKey"] = {"pk": _fn(fid), "sk": f"SAMPLE#{after}"}
        if origin is not None:
            kwargs["FilterExpression"] = Attr("origin").eq(origin)
        kwargs["ScanIndexForward"] = not descending
        items, more = _fill_page(self.table, kwargs, limit)
        samples = [SampleItem.model_validate(i) for i in items]
        return samples, (samples[-1].id if more else None)

    def iter_samples(self, fid: str, projection: str | None = None) -> Iterator[dict]:
        """All samples of a function as plain dicts (for counts and training)."""
        for item in self._query(self.table, key=Key("pk").eq(_fn(fid)) & Key("sk").begins_with(
                "SAMPLE#"), projection=projection):
            yield _strip(item)

    def delete_sample(self, sample: SampleItem, keep_claim: bool = False) -> None:
        """Delete a sample (and free its capture slot, if it holds one). `keep_claim` keeps
        its data-hash claim, marked dismissed, so the same text is not captured again."""
        fk = _fn(sample.function_id)
        key = {"pk": fk, "sk": f"SAMPLE#{sample.id}"}
        hash_key = {"pk": fk, "sk": f"HASH#{sample.data_hash}"}
        claim = ({"Update": {"TableName": self.table.name, "Key": hash_key,
                             "UpdateExpression": "SET dismissed = :t",
                             "ExpressionAttributeValues": {":t": True}}} if keep_claim else
                 {"Delete": {"TableName": self.table.name, "Key": hash_key}})
        if sample.buffer is None:
            self._transact([{"Delete": {"TableName": self.table.name, "Key": key}}, claim])
            return
        self._transact([
            {"Delete": {"TableName": self.table.name, "Key": key,
                        "ConditionExpression": "#b = :b", "ExpressionAttributeNames": {
                            "#b": "buffer"}, "ExpressionAttributeValues": {
                            ":b": sample.buffer}}},
            claim, self._release(fk, sample.buffer)],
            on_condition=lambda: NotFound(f"sample {sample.id!r} changed meanwhile; retry"))

    def set_annotation(self, fid: str, sid: str, label_id: str | None,
                       only_if_label: str | None = None, buffer: str | None = None) -> None:
        """Annotate (or clear, with None). `only_if_label` clears only an annotation that
        still names that label (label deletion racing a re-annotation). `buffer`: the sample
        holds a slot of that capture strategy, which annotating frees in the same
        transaction (exactly once: the condition is that it still holds it)."""
        key = {"pk": _fn(fid), "sk": f"SAMPLE#{sid}"}
        cond = "attribute_exists(pk)" + (" AND annotation = :old" if only_if_label else "")
        values: dict = {":old": only_if_label} if only_if_label else {}
        if label_id is None:
            expr = "REMOVE annotation, annotated_at"
        else:
            expr = "SET annotation = :l, annotated_at = :t"
            values |= {":l": label_id, ":t": _to_ddb(time.time())}
        if buffer is not None and label_id is not None:
            self._transact([
                {"Update": {"TableName": self.table.name, "Key": key,
                            "UpdateExpression": expr + " REMOVE #b, gsi2pk, gsi2sk",
                            "ConditionExpression": cond + " AND #b = :b",
                            "ExpressionAttributeNames": {"#b": "buffer"},
                            "ExpressionAttributeValues": _to_ddb(values | {":b": buffer})}},
                self._release(_fn(fid), buffer)],
                on_condition=lambda: Conflict(f"sample {sid!r} left the capture buffer "
                                              "meanwhile; retry"))
            return
        try:
            self.table.update_item(Key=key, UpdateExpression=expr, ConditionExpression=cond,
                                   **({"ExpressionAttributeValues": values} if values else {}))
        except ClientError as err:
            if not _failed_condition(err):
                raise
            if only_if_label is None:
                raise NotFound(f"sample {sid!r} not found") from err

    # -- capture buffer -----------------------------------------------------------------

    def capture_sample(self, sample: SampleItem, quota: int, replaces: Slot | None) -> None:
        """Commit a capture atomically: the sample and its data-hash claim, plus either one
        more slot of its strategy (only while fewer than `quota` are used) or the slot of
        the item it replaces (only while that item still holds it: a slot is reused once).
        Conflict if any condition fails (full, replaced already, duplicate data)."""
        fk, strategy = _fn(sample.function_id), sample.buffer
        ops = [self._put(self.table, {"pk": fk, "sk": f"HASH#{sample.data_hash}",
                                      "sample_id": sample.id}),
               self._put(self.table, _sample_item(sample))]
        if replaces is None:
            ops.append(self._take_slot(fk, strategy, quota))
        else:
            ops += self._vacate(fk, strategy, replaces)
        self._transact(ops, on_condition=lambda: Conflict("capture lost a race"))

    def capture_samples(self, captures: list[tuple[SampleItem, Take]]) -> None:
        """Commit many captures of one function in one transaction, on the same conditions
        as `capture_sample` each: a strategy's new slots as one counter increment (only while
        they all fit under its quota), replaced items only while they still hold their slot.
        Conflict if any condition fails: then nothing is written."""
        fk = _fn(captures[0][0].function_id)
        ops, slots = [], Counter()
        for sample, take in captures:
            ops += [self._put(self.table, {"pk": fk, "sk": f"HASH#{sample.data_hash}",
                                           "sample_id": sample.id}),
                    self._put(self.table, _sample_item(sample))]
            if take.replaces is None:
                slots[(take.strategy, take.quota)] += 1
            else:
                ops += self._vacate(fk, take.strategy, take.replaces)
        for (strategy, quota), n in slots.items():
            ops.append(self._take_slot(fk, strategy, quota, n))
        self._transact(ops, on_condition=lambda: Conflict("captures lost a race"))

    def capture_counters(self, fid: str) -> dict[str, int]:
        """Slots used per strategy (consistent)."""
        items = self._query(self.table, key=Key("pk").eq(_fn(fid)) & Key("sk").begins_with(
            "CAPTURE#"), consistent=True)
        return {i["sk"].removeprefix("CAPTURE#"): int(i.get("used", 0)) for i in items}

    def lowest_buffered(self, fid: str, strategy: str) -> Slot | None:
        items = self.table.query(IndexName="gsi2", Limit=1, ScanIndexForward=True,
                                 KeyConditionExpression=Key("gsi2pk").eq(_buf(fid, strategy)),
                                 ProjectionExpression="id, priority, data_hash").get("Items")
        if not items:
            return None
        i = _from_ddb(items[0])
        return Slot(i["id"], float(i["priority"]), i["data_hash"])

    def page_buffer(self, fid: str, strategy: str, limit: int,
                    after: SampleItem | None = None) -> list[SampleItem]:
        """Buffered items of one strategy, most informative first."""
        kwargs: dict = {"IndexName": "gsi2", "ScanIndexForward": False, "Limit": limit,
                        "KeyConditionExpression": Key("gsi2pk").eq(_buf(fid, strategy))}
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"pk": _fn(fid), "sk": f"SAMPLE#{after.id}",
                                           "gsi2pk": _buf(fid, strategy),
                                           "gsi2sk": _priority_key(after.priority, after.id)}
        items = self.table.query(**kwargs).get("Items", [])
        return [SampleItem.model_validate(_strip(i)) for i in items]

    def iter_buffer(self, fid: str, strategy: str, projection: str | None = None
                    ) -> Iterator[dict]:
        for item in self._query(self.table, index="gsi2",
                                key=Key("gsi2pk").eq(_buf(fid, strategy)),
                                projection=projection):
            yield _strip(item)

    def rescore(self, sample: SampleItem, priority: float) -> None:
        """A buffered item's priority under a new model (after a retrain); skipped if it left
        the buffer meanwhile. The invoke's own prediction stays as it was answered."""
        try:
            self.table.update_item(
                Key={"pk": _fn(sample.function_id), "sk": f"SAMPLE#{sample.id}"},
                UpdateExpression="SET priority = :p, gsi2sk = :k",
                ConditionExpression="#b = :b", ExpressionAttributeNames={"#b": "buffer"},
                ExpressionAttributeValues=_to_ddb({
                    ":p": priority, ":k": _priority_key(priority, sample.id),
                    ":b": sample.buffer}))
        except ClientError as err:
            if not _failed_condition(err):
                raise

    def return_to_buffer(self, sample: SampleItem, quota: int) -> None:
        """Clear a captured sample's annotation and put it back in its strategy's buffer, at
        its old priority, if the strategy has a free slot: one transaction. Conflict if it
        has none, or the sample changed meanwhile (buffered again, or gone)."""
        fk, strategy = _fn(sample.function_id), sample.capture_reason
        self._transact([
            {"Update": {"TableName": self.table.name,
                        "Key": {"pk": fk, "sk": f"SAMPLE#{sample.id}"},
                        "UpdateExpression": "REMOVE annotation, annotated_at "
                                            "SET #b = :b, gsi2pk = :pk, gsi2sk = :sk",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#b)",
                        "ExpressionAttributeNames": {"#b": "buffer"},
                        "ExpressionAttributeValues": {
                            ":b": strategy, ":pk": _buf(sample.function_id, strategy),
                            ":sk": _priority_key(sample.priority, sample.id)}}},
            self._take_slot(fk, strategy, quota)],
            on_condition=lambda: Conflict(f"no free {strategy} slot for {sample.id!r}"))

    def _take_slot(self, fk: str, strategy: str, quota: int, n: int = 1) -> dict:
        """`n` more slots of a strategy, only if they all fit under its quota."""
        return {"Update": {"TableName": self.table.name,
                           "Key": {"pk": fk, "sk": f"CAPTURE#{strategy}"},
                           "UpdateExpression": "ADD used :n",
                           "ConditionExpression": "attribute_not_exists(used) OR used <= :room",
                           "ExpressionAttributeValues": {":n": n, ":room": quota - n}}}

    def _vacate(self, fk: str, strategy: str, slot: Slot) -> list[dict]:
        """Delete a buffered item whose slot a capture takes over, while it still holds it,
        and its data-hash claim."""
        return [{"Delete": {"TableName": self.table.name,
                            "Key": {"pk": fk, "sk": f"SAMPLE#{slot.sample_id}"},
                            "ConditionExpression": "#b = :b",
                            "ExpressionAttributeNames": {"#b": "buffer"},
                            "ExpressionAttributeValues": {":b": strategy}}},
                {"Delete": {"TableName": self.table.name,
                            "Key": {"pk": fk, "sk": f"HASH#{slot.data_hash}"}}}]

    def _release(self, fk: str, strategy: str) -> dict:
        return {"Update": {"TableName": self.table.name,
                           "Key": {"pk": fk, "sk": f"CAPTURE#{strategy}"},
                           "UpdateExpression": "ADD used :minus",
                           "ConditionExpression": "used > :zero",
                           "ExpressionAttributeValues": {":minus": -1, ":zero": 0}}}

    def _transact(self, ops: list[dict], on_condition=None) -> None:
        try:
            self._ddb.meta.client.transact_write_items(TransactItems=ops)
        except ClientError as err:
            if on_condition is not None and _failed_condition(err):
                raise on_condition() from err
            raise

    # -- invokes ------------------------------------------------------------------------

    def put_invoke(self, record: InvokeItem) -> None:
        self.invokes.put_item(Item=_to_ddb({"pk": _fn(record.function_id),
                                            "sk": f"INVOKE#{record.sample_id}",
                                            **record.model_dump()}))

    def get_invoke(self, fid: str, sid: str, now: float) -> InvokeItem | None:
        """None when absent or expired (DynamoDB deletes expired items late, moto never)."""
        item = self.invokes.get_item(Key={"pk": _fn(fid), "sk": f"INVOKE#{sid}"},
                                     ConsistentRead=True).get("Item")
        if not item or int(item["expires_at"]) <= now:
            return None
        return InvokeItem.model_validate(_strip(item))

    def page_invokes(self, fid: str, limit: int, after: str | None, now: float
                     ) -> tuple[list[InvokeItem], str | None]:
        """Stored invokes, newest first (sample ids are time-ordered); expired ones are left
        out, since DynamoDB deletes them up to days late. Returns the page and the id to
        continue after."""
        kwargs: dict = {"KeyConditionExpression": Key("pk").eq(_fn(fid))
                        & Key("sk").begins_with("INVOKE#"), "ScanIndexForward": False,
                        "FilterExpression": Attr("expires_at").gt(int(now))}
        if after:
            kwargs["ExclusiveStartKey"] = {"pk": _fn(fid), "sk": f"INVOKE#{after}"}
        items, more = _fill_page(self.invokes, kwargs, limit)
        records = [InvokeItem.model_validate(i) for i in items]
        return records, (records[-1].sample_id if more else None)

    def put_invokes(self, records: list[InvokeItem]) -> None:
        """Many invoke records in BatchWriteItem calls of 25 (a batch-invoke part)."""
        with self.invokes.batch_writer() as batch:
            for r in records:
                batch.put_item(Item=_to_ddb({"pk": _fn(r.function_id),
                                             "sk": f"INVOKE#{r.sample_id}", **r.model_dump()}))

    # -- batch-invoke jobs --------------------------------------------------------------

    def create_job(self, job: BatchJobItem) -> None:
        self.table.put_item(Item=_to_ddb({"pk": _fn(job.function_id), "sk": f"JOB#{job.id}",
                                          **job.model_dump()}),
                            ConditionExpression=Attr("pk").not_exists())

    def get_job(self, fid: str, job_id: str) -> BatchJobItem:
        return self._get_one(f"JOB#{job_id}", fid, BatchJobItem, f"batch job {job_id!r}")

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
        try:
            self.table.update_item(
                Key={"pk": _fn(fid), "sk": f"JOB#{job_id}"},
                UpdateExpression="SET " + ", ".join(f"#{k} = {v}" for k, v in sets.items()) +
                                 " ADD " + ", ".join(f"#{k} {v}" for k, v in adds.items()),
                ConditionExpression="NOT contains(#done_parts, :p)",
                ExpressionAttributeNames={f"#{k}": k for k in [*sets, *adds]},
                ExpressionAttributeValues=_to_ddb(values))
        except ClientError as err:
            if _failed_condition(err):
                return False
            raise
        return True

    def send_batch_messages(self, queue_url: str, bodies: list[str]) -> None:
        """SendMessageBatch in groups of up to 10 whose payload stays under SQS's 256 KiB;
        raises if any message was not accepted."""
        group: list[str] = []
        size = 0
        for body in [*bodies, None]:
            n = 0 if body is None else len(body.encode())
            if group and (body is None or len(group) == 10 or size + n > SQS_MAX_BYTES):
                resp = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(i), "MessageBody": b} for i, b in enumerate(group)])
                if resp.get("Failed"):
                    raise RuntimeError(f"SQS refused batch messages: {resp['Failed'][:3]}")
                group, size = [], 0
            if body is not None:
                group.append(body)
                size += n

    def put_results(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body,
                            ContentType="application/x-ndjson")

    def result_keys(self, prefix: str, after: str | None = None) -> Iterator[str]:
        """Keys under `prefix` in key order, from after `after` (a full key) on."""
        kwargs = {"Bucket": self.bucket, "Prefix": prefix}
        if after:
            kwargs["StartAfter"] = after
        for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def get_results(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def idempotency_layer(self, table_name: str):
        """Powertools' DynamoDB persistence layer (the batch worker's idempotency per message).
        Its own plain client: the resource's client would serialise the typed values
        Powertools sends a second time."""
        import boto3
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
        from botocore.config import Config

        client = boto3.session.Session().client("dynamodb",
                                                config=Config(retries={"mode": "standard"}))
        return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)

    # -- helpers ------------------------------------------------------------------------

    def _get_one(self, sk: str, fid: str, model, what: str):
        """The function's item under `sk` (read consistently), or NotFound naming `what`."""
        item = self.table.get_item(Key={"pk": _fn(fid), "sk": sk},
                                   ConsistentRead=True).get("Item")
        if not item:
            raise NotFound(f"{what} not found")
        return model.model_validate(_strip(item))

    @staticmethod
    def _query(table, key, index: str | None = None, projection: str | None = None,
               consistent: bool = False) -> Iterator[dict]:
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

    @staticmethod
    def _put(table, item: dict, condition: str = "attribute_not_exists(pk)",
             values: dict | None = None) -> dict:
        # The resource's client serialises Python values itself.
        put = {"TableName": table.name, "ConditionExpression": condition, "Item": _to_ddb(item)}
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    @staticmethod
    def _update(table, key: dict, expr: str, names: dict | None, values: dict, condition: str,
                message: str, error: type, returns: str = "NONE") -> dict:
        kwargs: dict = {"Key": key, "UpdateExpression": expr, "ConditionExpression": condition,
                        "ExpressionAttributeValues": values, "ReturnValues": returns}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            return table.update_item(**kwargs).get("Attributes", {})
        except ClientError as err:
            if _failed_condition(err):
                raise error(message) from err
            raise

    def _delete_prefix(self, prefix: str) -> None:
        pages = self._s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            objs = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for i in range(0, len(objs), 1000):
                self._s3.delete_objects(Bucket=self.bucket,
                                        Delete={"Objects": objs[i:i + 1000], "Quiet": True})
