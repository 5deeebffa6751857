"""Sample items (annotated or not, captured or not), each with a data-hash claim that keeps
one sample per distinct text, and the function's sample counts changed in the same
transactions (`sample_counts`); reads of a whole function come back as typed projections."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from labelloop.data import keys, sample_counts, slots
from labelloop.data.codec import Tables, failed_condition, fill_page, put_op, query, strip, to_ddb
from labelloop.domain import (
    SampleCounts,
    SampleFacts,
    SampleItem,
    SampleVector,
    TrainingRow,
    decode_views,
)
from labelloop.errors import Conflict, NotFound

FACTS = "id, annotation, origin, capture_reason, predicted_label_id, model_version, kept"
# Samples per transaction of `create_many`: DynamoDB takes 100 operations, two per sample and
# one for the counts.
CREATE_MANY = 49


def sample_item(sample: SampleItem) -> dict:
    """The stored item, with its index keys (external id; capture buffer slot)."""
    item = {"pk": keys.fn(sample.function_id), "sk": f"SAMPLE#{sample.id}",
            **sample.model_dump()}
    if sample.external_id:
        item |= {"gsi1pk": f"EXT#{sample.function_id}#{sample.external_id}",
                 "gsi1sk": sample.id}
    if sample.buffer:
        item |= {"gsi2pk": keys.buf(sample.function_id, sample.buffer),
                 "gsi2sk": keys.priority_key(sample.priority, sample.id)}
    return item


def facts(row: dict) -> SampleFacts:
    return SampleFacts(row["id"], row.get("annotation"), row.get("origin"),
                       row.get("capture_reason"), row.get("predicted_label_id"),
                       row.get("model_version"), row.get("kept"))


def _names(views: bytes | None) -> dict:
    # Through a placeholder, as `codec.query` names every attribute (reserved words).
    return {"#v": "views"} if views is not None else {}


def vector(row: dict) -> SampleVector:
    return SampleVector(row["id"], np.frombuffer(row["embedding"], dtype=np.float32))


class Samples:
    def __init__(self, tables: Tables):
        self._tables = tables
        self._t = tables.main

    def create(self, sample: SampleItem) -> None:
        """The sample and its data-hash claim in one transaction: identical data posted twice,
        even at once, ends as one sample; the loser gets a Conflict naming the winner."""
        try:
            self._tables.transact([*self._create_ops(sample), *self._counted([sample])])
        except ClientError as err:
            if not failed_condition(err):
                raise
            raise self._conflict(sample) from err

    def create_many(self, samples: list[SampleItem]) -> list[Conflict | None]:
        """`create` for each, in transactions of up to CREATE_MANY (two operations each):
        per sample None, or the Conflict `create` would have raised. A transaction a claim
        cancels is written again without the samples whose claims failed. The same data
        twice in `samples` (one transaction may not name an item twice): the later ones are
        created one by one after the rest, each then a Conflict naming the first."""
        out: list[Conflict | None] = [None] * len(samples)
        first: dict[str, int] = {}
        later = [i for i, s in enumerate(samples) if first.setdefault(s.data_hash, i) != i]
        bulk = sorted(first.values())
        for at in range(0, len(bulk), CREATE_MANY):
            todo = bulk[at:at + CREATE_MANY]
            while todo:
                try:
                    # The counts' operation goes last: a cancellation's reasons by position
                    # name the samples.
                    self._tables.transact([*(op for i in todo
                                             for op in self._create_ops(samples[i])),
                                           *self._counted([samples[i] for i in todo])])
                    break
                except ClientError as err:
                    reasons = err.response.get("CancellationReasons") or []
                    failed = {todo[k // 2] for k, r in enumerate(reasons)
                              if r.get("Code") == "ConditionalCheckFailed"}
                    if not failed_condition(err) or not failed:
                        raise
                    for i in failed:
                        out[i] = self._conflict(samples[i])
                    todo = [i for i in todo if i not in failed]
        for i in later:
            try:
                self.create(samples[i])
            except Conflict as err:
                out[i] = err
        return out

    def _create_ops(self, sample: SampleItem) -> list[dict]:
        hash_key = {"pk": keys.fn(sample.function_id), "sk": f"HASH#{sample.data_hash}"}
        # A claim left by a dismissed capture only stops captures, not samples.
        return [put_op(self._t, {**hash_key, "sample_id": sample.id},
                       condition="attribute_not_exists(pk) OR dismissed = :t",
                       values={":t": True}),
                put_op(self._t, sample_item(sample))]

    def _counted(self, samples: list[SampleItem]) -> list[dict]:
        """The counts' operation for new samples (as a list: none when there are none)."""
        op = sample_counts.change(self._t, keys.fn(samples[0].function_id), samples[0].id,
                                  len(samples),
                                  sample_counts.added(s.annotation for s in samples))
        return [op] if op else []

    def counts(self, fid: str) -> SampleCounts | None:
        """The function's sample counts (read consistently); None for a function from before
        they were kept."""
        return sample_counts.read(list(query(
            self._t, key=Key("pk").eq(keys.fn(fid)) & Key("sk").begins_with(
                sample_counts.PREFIX), consistent=True)))

    def _conflict(self, sample: SampleItem) -> Conflict:
        existing = self._t.get_item(Key={"pk": keys.fn(sample.function_id),
                                         "sk": f"HASH#{sample.data_hash}"},
                                    ConsistentRead=True).get("Item")
        return Conflict("a sample with the same data exists",
                        existingSampleId=existing.get("sample_id") if existing else None)

    def get(self, fid: str, sid: str) -> SampleItem:
        return self._tables.get_one(keys.fn(fid), f"SAMPLE#{sid}", SampleItem,
                                    f"sample {sid!r}")

    def get_many(self, fid: str, sids: list[str]) -> list[SampleItem]:
        """Many samples in one BatchGetItem (at most 100), in the order asked; ones that no
        longer exist are left out."""
        wanted = [{"pk": keys.fn(fid), "sk": f"SAMPLE#{sid}"} for sid in dict.fromkeys(sids)]
        if len(wanted) > 100:
            raise ValueError("at most 100 samples per call")
        found: dict[str, SampleItem] = {}
        request = {self._t.name: {"Keys": wanted, "ConsistentRead": True}} if wanted else {}
        while request:
            resp = self._tables.resource.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self._t.name, []):
                sample = SampleItem.model_validate(strip(item))
                found[sample.id] = sample
            request = resp.get("UnprocessedKeys") or {}
        return [found[sid] for sid in sids if sid in found]

    def page(self, fid: str, limit: int, descending: bool, after: str | None,
             external_id: str | None = None, origin: str | None = None
             ) -> tuple[list[SampleItem], str | None]:
        """One page in creation order; returns the samples and the id to continue after.
        With `origin`, only samples of that origin (read on until the page is full)."""
        if external_id is not None:
            kwargs = {"IndexName": "gsi1",
                      "KeyConditionExpression": Key("gsi1pk").eq(f"EXT#{fid}#{external_id}")}
            if after:
                kwargs["ExclusiveStartKey"] = {"pk": keys.fn(fid), "sk": f"SAMPLE#{after}",
                                               "gsi1pk": f"EXT#{fid}#{external_id}",
                                               "gsi1sk": after}
        else:
            kwargs = {"KeyConditionExpression": self._all(fid)}
            if after:
                kwargs["ExclusiveStartKey"] = {"pk": keys.fn(fid), "sk": f"SAMPLE#{after}"}
        if origin is not None:
            kwargs["FilterExpression"] = Attr("origin").eq(origin)
        kwargs["ScanIndexForward"] = not descending
        items, more = fill_page(self._t, kwargs, limit)
        samples = [SampleItem.model_validate(i) for i in items]
        return samples, (samples[-1].id if more else None)

    def _all(self, fid: str):
        return Key("pk").eq(keys.fn(fid)) & Key("sk").begins_with("SAMPLE#")

    def _rows(self, fid: str, projection: str) -> Iterator[dict]:
        for item in query(self._t, key=self._all(fid), projection=projection):
            yield strip(item)

    def facts(self, fid: str) -> Iterator[SampleFacts]:
        """Every sample's small attributes."""
        return map(facts, self._rows(fid, FACTS))

    def vectors(self, fid: str) -> Iterator[SampleVector]:
        """Every sample's embedding."""
        return map(vector, self._rows(fid, "id, embedding"))

    def training_rows(self, fid: str) -> Iterator[TrainingRow]:
        """The annotated samples with what training needs of them."""
        for row in self._rows(fid, FACTS + ", embedding, tokens, views"):
            if row.get("annotation") is not None:
                embedding = np.frombuffer(row["embedding"], dtype=np.float32)
                yield TrainingRow(facts(row), embedding,
                                  np.frombuffer(row["tokens"], dtype=np.int32),
                                  decode_views(row.get("views"), len(embedding)))

    def count(self, fid: str, at_least: int) -> int:
        """How many samples the function has, counted up to `at_least` (then it stops)."""
        kwargs = {"KeyConditionExpression": self._all(fid), "Select": "COUNT"}
        n = 0
        while n < at_least:
            resp = self._t.query(**kwargs)
            n += resp["Count"]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return n

    def delete(self, sample: SampleItem, keep_claim: bool = False) -> None:
        """Delete a sample (and free its capture slot, if it holds one). `keep_claim` keeps
        its data-hash claim, marked dismissed, so the same text is not captured again."""
        fk = keys.fn(sample.function_id)
        key = {"pk": fk, "sk": f"SAMPLE#{sample.id}"}
        hash_key = {"pk": fk, "sk": f"HASH#{sample.data_hash}"}
        claim = ({"Update": {"TableName": self._t.name, "Key": hash_key,
                             "UpdateExpression": "SET dismissed = :t",
                             "ExpressionAttributeValues": {":t": True}}} if keep_claim else
                 {"Delete": {"TableName": self._t.name, "Key": hash_key}})
        counted = sample_counts.change(self._t, fk, sample.id, -1,
                                       sample_counts.relabel(sample.annotation, None))
        if sample.buffer is None:
            # Counted as it was read: only while it still exists with that annotation.
            cond, values = _annotation_is(sample.annotation)
            remove = {"TableName": self._t.name, "Key": key,
                      "ConditionExpression": "attribute_exists(pk) AND " + cond}
            if values:
                remove["ExpressionAttributeValues"] = values
            self._tables.transact(
                [{"Delete": remove}, claim, counted],
                on_condition=lambda: Conflict(f"sample {sample.id!r} changed meanwhile; "
                                              "reload it"))
            return
        self._tables.transact([
            {"Delete": {"TableName": self._t.name, "Key": key,
                        "ConditionExpression": "#b = :b", "ExpressionAttributeNames": {
                            "#b": "buffer"}, "ExpressionAttributeValues": {
                            ":b": sample.buffer}}},
            claim, slots.release(self._t, fk, sample.buffer), counted],
            on_condition=lambda: NotFound(f"sample {sample.id!r} changed meanwhile; retry"))

    def keep(self, fid: str, sid: str, label_id: str) -> None:
        """Mark the annotation `label_id` as confirmed by a reviewer; a Conflict if the sample
        no longer has that annotation."""
        try:
            self._t.update_item(Key={"pk": keys.fn(fid), "sk": f"SAMPLE#{sid}"},
                                UpdateExpression="SET kept = :l",
                                ConditionExpression="annotation = :l",
                                ExpressionAttributeValues={":l": label_id})
        except ClientError as err:
            if not failed_condition(err):
                raise
            raise Conflict(f"sample {sid!r} is no longer annotated with that label; "
                           "reload it") from err

    def set_annotation(self, fid: str, sid: str, label_id: str | None, was: str | None,
                       quiet: bool = False, buffer: str | None = None,
                       views: bytes | None = None) -> None:
        """Annotate (or clear, with None). `was`: the annotation it replaces, as the caller
        read it: the write (and the counts' move from it) holds only while the sample still
        has it, else a Conflict (the caller reads again), or nothing with `quiet` (label
        deletion racing a re-annotation). `buffer`: the sample holds a slot of that capture
        strategy, which annotating frees in the same transaction (exactly once: the
        condition is that it still holds it). `views`: the sample's training views, stored
        with the annotation. NotFound if the sample is gone."""
        fk = keys.fn(fid)
        key = {"pk": fk, "sk": f"SAMPLE#{sid}"}
        held, values = _annotation_is(was)
        cond = f"attribute_exists(pk) AND {held}"
        if label_id is None:
            expr = "REMOVE annotation, annotated_at"
        else:
            expr = "SET annotation = :l, annotated_at = :t"
            values |= {":l": label_id, ":t": to_ddb(time.time())}
            if views is not None:
                expr += ", #v = :v"
                values[":v"] = views
        names = _names(views) if views is not None and label_id is not None else {}
        extra: list[dict] = []
        if buffer is not None and label_id is not None:
            expr += " REMOVE #b, gsi2pk, gsi2sk"
            cond += " AND #b = :b"
            names |= {"#b": "buffer"}
            values[":b"] = buffer
            extra.append(slots.release(self._t, fk, buffer))
        counted = sample_counts.change(self._t, fk, sid, 0,
                                       sample_counts.relabel(was, label_id))
        if counted:
            extra.append(counted)
        update = {"Key": key, "UpdateExpression": expr, "ConditionExpression": cond,
                  **({"ExpressionAttributeValues": values} if values else {}),
                  **({"ExpressionAttributeNames": names} if names else {})}
        try:
            if extra:
                self._tables.transact([{"Update": {"TableName": self._t.name,
                                                   **to_ddb(update)}}, *extra])
            else:
                self._t.update_item(**update)
        except ClientError as err:
            if not failed_condition(err):
                raise
            if quiet:
                return
            if self._t.get_item(Key=key, ProjectionExpression="pk").get("Item") is None:
                raise NotFound(f"sample {sid!r} not found") from err
            raise Conflict(f"sample {sid!r} changed meanwhile; reload it") from err


def _annotation_is(label_id: str | None) -> tuple[str, dict]:
    """A condition that the sample is annotated `label_id` (None: not annotated)."""
    if label_id is None:
        return "attribute_not_exists(annotation)", {}
    return "annotation = :was", {":was": label_id}
