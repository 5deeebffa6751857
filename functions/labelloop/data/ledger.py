"""The capture ledger: captured samples in their strategy's buffer (gsi2, by priority) and the
per-strategy slot counters, changed together in single transactions (capture, replacement,
return to the buffer) so that no quota is ever exceeded, even by racing containers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from boto3.dynamodb.conditions import Key

from labelloop.capture.decide import Buffered, Slot, Take
from labelloop.data import keys, sample_counts, slots
from labelloop.data.codec import Tables, from_ddb, put_op, query, strip, to_ddb, update_if
from labelloop.data.samples import sample_item, vector
from labelloop.domain import SampleItem
from labelloop.errors import Conflict


class CaptureLedger:
    def __init__(self, tables: Tables):
        self._tables = tables
        self._t = tables.main

    def _claim_and_sample(self, fk: str, sample: SampleItem) -> list[dict]:
        return [put_op(self._t, {"pk": fk, "sk": f"HASH#{sample.data_hash}",
                                 "sample_id": sample.id}),
                put_op(self._t, sample_item(sample))]

    def capture(self, sample: SampleItem, quota: int, replaces: Slot | None) -> None:
        """Commit a capture atomically: the sample and its data-hash claim, plus either one
        more slot of its strategy (only while fewer than `quota` are used) or the slot of
        the item it replaces (only while that item still holds it: a slot is reused once).
        Conflict if any condition fails (full, replaced already, duplicate data)."""
        fk, strategy = keys.fn(sample.function_id), sample.buffer
        ops = self._claim_and_sample(fk, sample)
        if replaces is None:
            ops.append(slots.take(self._t, fk, strategy, quota))
            # One more sample (a replacement deletes the one it replaces: as many as before).
            ops.append(sample_counts.change(self._t, fk, sample.id, 1))
        else:
            ops += self._vacate(fk, strategy, replaces)
        self._tables.transact(ops, on_condition=lambda: Conflict("capture lost a race"))

    def capture_many(self, captures: list[tuple[SampleItem, Take]]) -> None:
        """Commit many captures of one function in one transaction, on the same conditions
        as `capture` each: a strategy's new slots as one counter increment (only while they
        all fit under its quota), replaced items only while they still hold their slot.
        Conflict if any condition fails: then nothing is written."""
        fk = keys.fn(captures[0][0].function_id)
        ops, taken = [], Counter()
        for sample, take in captures:
            ops += self._claim_and_sample(fk, sample)
            if take.replaces is None:
                taken[(take.strategy, take.quota)] += 1
            else:
                ops += self._vacate(fk, take.strategy, take.replaces)
        for (strategy, quota), n in taken.items():
            ops.append(slots.take(self._t, fk, strategy, quota, n))
        counted = sample_counts.change(self._t, fk, captures[0][0].id, sum(taken.values()))
        if counted:
            ops.append(counted)
        self._tables.transact(ops, on_condition=lambda: Conflict("captures lost a race"))

    def counters(self, fid: str) -> dict[str, int]:
        """Slots used per strategy (consistent)."""
        items = query(self._t, key=Key("pk").eq(keys.fn(fid)) & Key("sk").begins_with(
            "CAPTURE#"), consistent=True)
        return {i["sk"].removeprefix("CAPTURE#"): int(i.get("used", 0)) for i in items}

    def lowest(self, fid: str, strategy: str, n: int) -> list[Slot]:
        """The `n` least informative buffered items, least first: the first is what a better
        capture would replace, the rest what it would replace after that."""
        items = self._t.query(IndexName="gsi2", Limit=n, ScanIndexForward=True,
                              KeyConditionExpression=Key("gsi2pk").eq(keys.buf(fid, strategy)),
                              ProjectionExpression="id, priority, data_hash").get("Items", [])
        return [Slot(i["id"], float(i["priority"]), i["data_hash"]) for i in map(from_ddb, items)]

    def page(self, fid: str, strategy: str, limit: int,
             after: SampleItem | None = None) -> list[SampleItem]:
        """Buffered items of one strategy, most informative first."""
        kwargs: dict = {"IndexName": "gsi2", "ScanIndexForward": False, "Limit": limit,
                        "KeyConditionExpression": Key("gsi2pk").eq(keys.buf(fid, strategy))}
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"pk": keys.fn(fid), "sk": f"SAMPLE#{after.id}",
                                           "gsi2pk": keys.buf(fid, strategy),
                                           "gsi2sk": keys.priority_key(after.priority, after.id)}
        items = self._t.query(**kwargs).get("Items", [])
        return [SampleItem.model_validate(strip(i)) for i in items]

    def _buffered(self, fid: str, strategy: str, projection: str | None) -> Iterator[dict]:
        for item in query(self._t, index="gsi2", key=Key("gsi2pk").eq(keys.buf(fid, strategy)),
                          projection=projection):
            yield strip(item)

    def items(self, fid: str, strategy: str) -> Iterator[SampleItem]:
        """Every item in one strategy's buffer."""
        return map(SampleItem.model_validate, self._buffered(fid, strategy, None))

    def buffered(self, fid: str, strategy: str) -> Iterator[Buffered]:
        """One strategy's buffered items: slot, predicted label, embedding."""
        for row in self._buffered(fid, strategy,
                                  "id, embedding, priority, data_hash, predicted_label_id"):
            v = vector(row)
            yield Buffered(Slot(v.id, float(row.get("priority", 0.0)), row["data_hash"]),
                           row.get("predicted_label_id"), v.embedding)

    def rescore(self, sample: SampleItem, priority: float) -> None:
        """A buffered item's priority under a new model (after a retrain); skipped if it left
        the buffer meanwhile. The invoke's own prediction stays as it was answered."""
        update_if(self._t, Key={"pk": keys.fn(sample.function_id), "sk": f"SAMPLE#{sample.id}"},
                  UpdateExpression="SET priority = :p, gsi2sk = :k",
                  ConditionExpression="#b = :b", ExpressionAttributeNames={"#b": "buffer"},
                  ExpressionAttributeValues=to_ddb({
                      ":p": priority, ":k": keys.priority_key(priority, sample.id),
                      ":b": sample.buffer}))

    def return_to_buffer(self, sample: SampleItem, quota: int) -> None:
        """Clear a captured sample's annotation and put it back in its strategy's buffer, at
        its old priority, if the strategy has a free slot: one transaction. Conflict if it
        has none, or the sample changed meanwhile (buffered again, or gone)."""
        fk, strategy = keys.fn(sample.function_id), sample.capture_reason
        self._tables.transact([
            {"Update": {"TableName": self._t.name,
                        "Key": {"pk": fk, "sk": f"SAMPLE#{sample.id}"},
                        "UpdateExpression": "REMOVE annotation, annotated_at "
                                            "SET #b = :b, gsi2pk = :pk, gsi2sk = :sk",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#b) "
                                               "AND annotation = :was",
                        "ExpressionAttributeNames": {"#b": "buffer"},
                        "ExpressionAttributeValues": {
                            ":b": strategy, ":pk": keys.buf(sample.function_id, strategy),
                            ":sk": keys.priority_key(sample.priority, sample.id),
                            ":was": sample.annotation}}},
            slots.take(self._t, fk, strategy, quota),
            *filter(None, [sample_counts.change(self._t, fk, sample.id, 0,
                                                sample_counts.relabel(sample.annotation, None))])],
            on_condition=lambda: Conflict(f"no free {strategy} slot for {sample.id!r}"))

    def _vacate(self, fk: str, strategy: str, slot: Slot) -> list[dict]:
        """Delete a buffered item whose slot a capture takes over, while it still holds it,
        and its data-hash claim."""
        return [{"Delete": {"TableName": self._t.name,
                            "Key": {"pk": fk, "sk": f"SAMPLE#{slot.sample_id}"},
                            "ConditionExpression": "#b = :b",
                            "ExpressionAttributeNames": {"#b": "buffer"},
                            "ExpressionAttributeValues": {":b": strategy}}},
                {"Delete": {"TableName": self._t.name,
                            "Key": {"pk": fk, "sk": f"HASH#{slot.data_hash}"}}}]
