"""In-memory repositories for the unit tier: the ports of `labelloop.data.ports`, with the
conditions the DynamoDB ones enforce (unique names and texts, the training lease, the live
pointer's compare-and-set). tests/test_data_contract.py runs the same contract against these
and against the boto3 repositories on moto, so a use case tested here behaves the same there.

Not faked (tests run them on moto): batch jobs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from labelloop.capture.decide import Buffered, Slot, Take
from labelloop.data.objects import artifact_key, image_key, results_key, results_prefix
from labelloop.data.samples import facts
from labelloop.domain import (
    ClientItem,
    FunctionItem,
    InvokeItem,
    LabelItem,
    ModelVersionItem,
    SampleCounts,
    SampleFacts,
    SampleItem,
    SampleVector,
    TrainingRow,
    decode_views,
)
from labelloop.errors import BadRequest, Busy, Conflict, NotFound


class MemoryClients:
    def __init__(self):
        self._items: dict[str, ClientItem] = {}
        self._fails: Counter = Counter()

    def put(self, client: ClientItem) -> None:
        self._items[client.id] = client

    def get(self, client_id: str) -> ClientItem | None:
        return self._items.get(client_id)

    def token_failures(self, client_id: str, window: int) -> int:
        return self._fails[(client_id, window)]

    def count_token_failure(self, client_id: str, window: int, expires_at: int) -> int:
        self._fails[(client_id, window)] += 1
        return self._fails[(client_id, window)]


class MemoryFunctions:
    def __init__(self):
        self._items: dict[str, FunctionItem] = {}
        self._buried: set[str] = set()
        self.next_versions: Counter = Counter()

    def put(self, fn: FunctionItem) -> None:
        assert fn.id not in self._items
        self._items[fn.id] = fn

    def get(self, fid: str) -> FunctionItem:
        if fid not in self._items:
            raise NotFound(f"function {fid!r} not found")
        return self._items[fid]

    def find(self, fid: str) -> FunctionItem | None:
        return self._items.get(fid)

    def list(self, client: str) -> list[FunctionItem]:
        return sorted((f for f in self._items.values() if f.client == client),
                      key=lambda f: f.id)

    def _change(self, fid: str, **fields) -> FunctionItem:
        self._items[fid] = self.get(fid).model_copy(update=fields)
        return self._items[fid]

    def update(self, fid: str, **fields) -> None:
        self._change(fid, **fields)

    def delete(self, fid: str) -> None:
        self._items.pop(fid, None)

    def bury(self, fid: str) -> None:
        self._buried.add(fid)

    def deleted(self, fid: str) -> bool:
        return fid in self._buried

    def next_model_version(self, fid: str) -> int:
        self.get(fid)
        self.next_versions[fid] += 1
        return self.next_versions[fid]

    def set_live(self, fid: str, version: int, expected: int | None,
                 history: list[int]) -> None:
        fn = self._items.get(fid)
        if fn is None or fn.live != expected:
            raise Conflict("the live model changed meanwhile; retry")
        self._change(fid, live=version, live_history=history)

    def request_training(self, fid: str, now: float, stale_before: float) -> bool:
        fn = self._items.get(fid)
        if fn is None or (fn.train_pending and (fn.train_requested_at or 0) >= stale_before):
            return False
        self._change(fid, train_pending=True, train_requested_at=now)
        return True

    def begin_training(self, fid: str, now: float, stale_before: float) -> FunctionItem | None:
        fn = self.get(fid)
        lease_free = fn.training_since is None or fn.training_since < stale_before
        if fn.train_pending and lease_free:
            return self._change(fid, train_pending=False, training_since=now,
                                last_train_error=None)
        if not lease_free:
            raise Busy(f"function {fid!r} is training since {fn.training_since}")
        return None

    def end_training(self, fid: str, started: float, error: str | None = None) -> None:
        fn = self._items.get(fid)
        if fn is not None and fn.training_since == started:
            self._change(fid, training_since=None,
                         **({"last_train_error": error[:2000]} if error else {}))


class MemoryLabels:
    def __init__(self):
        self._items: dict[tuple[str, str], LabelItem] = {}

    def _named(self, fid: str, name: str) -> LabelItem | None:
        return next((lb for (f, _), lb in self._items.items()
                     if f == fid and lb.name == name), None)

    def create(self, label: LabelItem) -> None:
        if existing := self._named(label.function_id, label.name):
            raise Conflict(f"a label named {label.name!r} exists", existingLabelId=existing.id)
        self._items[(label.function_id, label.id)] = label

    def get(self, fid: str, lid: str) -> LabelItem:
        if (fid, lid) not in self._items:
            raise NotFound(f"label {lid!r} not found")
        return self._items[(fid, lid)]

    def list(self, fid: str, consistent: bool = True) -> list[LabelItem]:
        return [lb for (f, lid), lb in sorted(self._items.items()) if f == fid]

    def replace(self, old: LabelItem, new: LabelItem) -> None:
        key = (new.function_id, new.id)
        taken = self._named(new.function_id, new.name)
        if key not in self._items or (taken is not None and taken.id != new.id):
            raise Conflict(f"a label named {new.name!r} exists")
        self._items[key] = new

    def delete(self, label: LabelItem) -> None:
        self._items.pop((label.function_id, label.id), None)


class MemorySamples:
    def __init__(self):
        self._items: dict[tuple[str, str], SampleItem] = {}
        self._claims: dict[tuple[str, str], tuple[str, bool]] = {}  # -> (sample id, dismissed)
        self.slots_used: Counter = Counter()  # (fid, strategy): what the ledger would count

    def create(self, sample: SampleItem) -> None:
        claim = self._claims.get((sample.function_id, sample.data_hash))
        if claim is not None and not claim[1]:
            raise Conflict("a sample with the same data exists", existingSampleId=claim[0])
        self._claims[(sample.function_id, sample.data_hash)] = (sample.id, False)
        self._items[(sample.function_id, sample.id)] = sample

    def create_many(self, samples: list[SampleItem]) -> list[Conflict | None]:
        out: list[Conflict | None] = []
        for sample in samples:
            try:
                self.create(sample)
                out.append(None)
            except Conflict as err:
                out.append(err)
        return out

    def get(self, fid: str, sid: str) -> SampleItem:
        if (fid, sid) not in self._items:
            raise NotFound(f"sample {sid!r} not found")
        return self._items[(fid, sid)]

    def get_many(self, fid: str, sids: list[str]) -> list[SampleItem]:
        if len(set(sids)) > 100:
            raise ValueError("at most 100 samples per call")
        return [self._items[(fid, s)] for s in sids if (fid, s) in self._items]

    def _all(self, fid: str) -> list[SampleItem]:
        return [s for (f, _), s in sorted(self._items.items()) if f == fid]

    def page(self, fid: str, limit: int, descending: bool, after: str | None,
             external_id: str | None = None, origin: str | None = None
             ) -> tuple[list[SampleItem], str | None]:
        rows = self._all(fid)[::-1] if descending else self._all(fid)
        if after is not None:
            rows = [s for s in rows if (s.id < after if descending else s.id > after)]
        rows = [s for s in rows if (external_id is None or s.external_id == external_id)
                and (origin is None or s.origin == origin)]
        page = rows[:limit]
        # DynamoDB may also name the last item of a page that happens to end the query.
        return page, (page[-1].id if len(rows) > limit else None)

    def facts(self, fid: str) -> Iterator[SampleFacts]:
        return (facts(s.model_dump()) for s in self._all(fid))

    def vectors(self, fid: str) -> Iterator[SampleVector]:
        return (SampleVector(s.id, np.frombuffer(s.embedding, dtype=np.float32))
                for s in self._all(fid))

    def training_rows(self, fid: str) -> Iterator[TrainingRow]:
        return (TrainingRow(facts(s.model_dump()), np.frombuffer(s.embedding, np.float32),
                            np.frombuffer(s.tokens, np.int32),
                            decode_views(s.views, len(s.embedding) // 4))
                for s in self._all(fid) if s.annotation is not None)

    def count(self, fid: str, at_least: int) -> int:
        return len(self._all(fid))

    def _release(self, fid: str, strategy: str) -> None:
        assert self.slots_used[(fid, strategy)] > 0
        self.slots_used[(fid, strategy)] -= 1

    def delete(self, sample: SampleItem, keep_claim: bool = False) -> None:
        fid = sample.function_id
        stored = self._items.get((fid, sample.id))
        if sample.buffer is not None:
            if stored is None or stored.buffer != sample.buffer:
                raise NotFound(f"sample {sample.id!r} changed meanwhile; retry")
            self._release(fid, sample.buffer)
        elif stored is None or stored.annotation != sample.annotation:
            raise Conflict(f"sample {sample.id!r} changed meanwhile; reload it")
        self._items.pop((fid, sample.id), None)
        if keep_claim:
            self._claims[(fid, sample.data_hash)] = (sample.id, True)
        else:
            self._claims.pop((fid, sample.data_hash), None)

    def keep(self, fid: str, sid: str, label_id: str) -> None:
        stored = self._items.get((fid, sid))
        if stored is None or stored.annotation != label_id:
            raise Conflict(f"sample {sid!r} is no longer annotated with that label; reload it")
        self._items[(fid, sid)] = stored.model_copy(update={"kept": label_id})

    def set_annotation(self, fid: str, sid: str, label_id: str | None, was: str | None,
                       quiet: bool = False, buffer: str | None = None,
                       views: bytes | None = None) -> None:
        stored = self._items.get((fid, sid))
        ok = (stored is not None and stored.annotation == was
              and (buffer is None or label_id is None or stored.buffer == buffer))
        if not ok:
            if quiet:
                return
            if stored is None:
                raise NotFound(f"sample {sid!r} not found")
            raise Conflict(f"sample {sid!r} changed meanwhile; reload it")
        changes: dict = {"annotation": label_id,
                         "annotated_at": None if label_id is None else time.time()}
        if views is not None and label_id is not None:
            changes["views"] = views
        if buffer is not None and label_id is not None:
            self._release(fid, buffer)
            changes["buffer"] = None
        self._items[(fid, sid)] = stored.model_copy(update=changes)

    def counts(self, fid: str) -> SampleCounts:
        every = self._all(fid)
        return SampleCounts(len(every), dict(Counter(s.annotation for s in every
                                                     if s.annotation is not None)))


class MemoryLedger:
    """The capture buffer over MemorySamples' items: a buffered sample is a sample whose
    `buffer` names its strategy; each write checks all its conditions before changing
    anything, as the DynamoDB transaction does."""

    def __init__(self, samples: MemorySamples):
        self._s = samples

    def _check(self, captures: list[tuple[SampleItem, Take]]) -> None:
        taken: Counter = Counter()
        for sample, take in captures:
            claim = self._s._claims.get((sample.function_id, sample.data_hash))
            replaced = take.replaces and self._s._items.get(
                (sample.function_id, take.replaces.sample_id))
            if claim is not None or (take.replaces and (
                    not replaced or replaced.buffer != take.strategy)):
                raise Conflict("capture lost a race")
            taken[(sample.function_id, take.strategy, take.quota)] += take.replaces is None
        for (fid, strategy, quota), n in taken.items():
            if self._s.slots_used[(fid, strategy)] + n > quota:
                raise Conflict("capture lost a race")

    def capture_many(self, captures: list[tuple[SampleItem, Take]]) -> None:
        self._check(captures)
        for sample, take in captures:
            fid = sample.function_id
            if take.replaces is None:
                self._s.slots_used[(fid, take.strategy)] += 1
            else:
                self._s._items.pop((fid, take.replaces.sample_id))
                self._s._claims.pop((fid, take.replaces.data_hash), None)
            self._s._claims[(fid, sample.data_hash)] = (sample.id, False)
            self._s._items[(fid, sample.id)] = sample

    def capture(self, sample: SampleItem, quota: int, replaces: Slot | None) -> None:
        self.capture_many([(sample, Take(sample.buffer, sample.priority or 0.0, quota,
                                         replaces))])

    def counters(self, fid: str) -> dict[str, int]:
        return {s: n for (f, s), n in self._s.slots_used.items() if f == fid}

    def _buffered(self, fid: str, strategy: str) -> list[SampleItem]:
        """Most informative first; ties by id, as gsi2's sort key orders them."""
        return sorted((s for s in self._s._all(fid) if s.buffer == strategy),
                      key=lambda s: (f"{s.priority or 0.0:.9f}", s.id), reverse=True)

    def lowest(self, fid: str, strategy: str, n: int) -> list[Slot]:
        return [Slot(s.id, s.priority, s.data_hash)
                for s in reversed(self._buffered(fid, strategy)[-n:])]

    def page(self, fid: str, strategy: str, limit: int,
             after: SampleItem | None = None) -> list[SampleItem]:
        items = self._buffered(fid, strategy)
        if after is not None:
            items = items[[s.id for s in items].index(after.id) + 1:]
        return items[:limit]

    def items(self, fid: str, strategy: str) -> Iterator[SampleItem]:
        return iter(self._buffered(fid, strategy)[::-1])

    def buffered(self, fid: str, strategy: str) -> Iterator[Buffered]:
        return (Buffered(Slot(s.id, s.priority or 0.0, s.data_hash), s.predicted_label_id,
                         np.frombuffer(s.embedding, np.float32))
                for s in self.items(fid, strategy))

    def rescore(self, sample: SampleItem, priority: float) -> None:
        stored = self._s._items.get((sample.function_id, sample.id))
        if stored is not None and stored.buffer == sample.buffer:
            self._s._items[(sample.function_id, sample.id)] = stored.model_copy(
                update={"priority": priority})

    def return_to_buffer(self, sample: SampleItem, quota: int) -> None:
        fid, strategy = sample.function_id, sample.capture_reason
        stored = self._s._items.get((fid, sample.id))
        if stored is None or stored.buffer is not None or (
                self._s.slots_used[(fid, strategy)] + 1 > quota):
            raise Conflict(f"no free {strategy} slot for {sample.id!r}")
        self._s.slots_used[(fid, strategy)] += 1
        self._s._items[(fid, sample.id)] = stored.model_copy(
            update={"annotation": None, "annotated_at": None, "buffer": strategy})


class MemoryInvokes:
    def __init__(self):
        self._items: dict[tuple[str, str], InvokeItem] = {}

    def put(self, record: InvokeItem) -> None:
        self._items[(record.function_id, record.sample_id)] = record

    def put_many(self, records: list[InvokeItem]) -> None:
        for r in records:
            self.put(r)

    def get(self, fid: str, sid: str, now: float) -> InvokeItem | None:
        r = self._items.get((fid, sid))
        return r if r is not None and r.expires_at > now else None

    def page(self, fid: str, limit: int, after: str | None, now: float
             ) -> tuple[list[InvokeItem], str | None]:
        rows = [r for (f, sid), r in sorted(self._items.items(), reverse=True)
                if f == fid and r.expires_at > now and (after is None or sid < after)]
        return rows[:limit], (rows[limit - 1].sample_id if len(rows) > limit else None)


class MemoryModelVersions:
    def __init__(self):
        self._items: dict[tuple[str, int], ModelVersionItem] = {}

    def put(self, mv: ModelVersionItem) -> None:
        self._items[(mv.function_id, mv.version)] = mv

    def get(self, fid: str, version: int) -> ModelVersionItem:
        if (fid, version) not in self._items:
            raise NotFound(f"model version {version} not found")
        return self._items[(fid, version)]

    def list(self, fid: str) -> list[ModelVersionItem]:
        return [mv for (f, _), mv in sorted(self._items.items()) if f == fid]

    def mark_promoted(self, fid: str, version: int, decision: str, promoted: bool) -> None:
        self._items[(fid, version)] = self.get(fid, version).model_copy(
            update={"promoted": promoted, "decision": decision})

    def record_thresholds(self, fid: str, version: int, record: dict) -> None:
        self._items[(fid, version)] = self.get(fid, version).model_copy(
            update={"thresholds": record})


class MemoryObjects:
    bucket = "memory"

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.types: dict[str, str] = {}

    def put_artifact(self, fid: str, version: int, name: str, body: bytes) -> None:
        self.objects[artifact_key(fid, version, name)] = body

    def get_artifact(self, fid: str, version: int, name: str) -> bytes:
        try:
            return self.objects[artifact_key(fid, version, name)]
        except KeyError:
            raise NotFound("model artifact not found") from None

    def put_image(self, fid: str, digest: str, body: bytes, content_type: str) -> None:
        self.objects[image_key(fid, digest)] = body
        self.types[image_key(fid, digest)] = content_type

    def get_image(self, fid: str, digest: str) -> tuple[bytes, str]:
        try:
            return self.objects[image_key(fid, digest)], self.types[image_key(fid, digest)]
        except KeyError:
            raise NotFound("image not found") from None

    def image_link(self, fid: str, digest: str, seconds: int) -> str:
        return f"memory://bucket/{image_key(fid, digest)}?X-Amz-Expires={seconds}"

    def get_input(self, key: str, max_bytes: int) -> bytes:
        if key not in self.objects:
            raise NotFound("no such object")
        if len(self.objects[key]) > max_bytes:
            raise BadRequest(f"data: the object is over {max_bytes // (1024 * 1024)} MiB")
        return self.objects[key]

    def put_results(self, fid: str, job_id: str, part: int, body: bytes) -> None:
        self.objects[results_key(fid, job_id, part)] = body

    def results_uri(self, fid: str, job_id: str) -> str:
        return f"s3://{self.bucket}/{results_prefix(fid, job_id)}"

    def result_keys(self, fid: str, job_id: str, after_part: int | None = None
                    ) -> Iterator[str]:
        start = results_key(fid, job_id, after_part) if after_part is not None else ""
        return iter(sorted(k for k in self.objects
                           if k.startswith(results_prefix(fid, job_id)) and k > start))

    def get_results(self, key: str) -> bytes:
        return self.objects[key]

    def download(self, uri: str, dest: Path) -> None:
        dest.write_bytes(self.objects[uri.removeprefix(f"s3://{self.bucket}/")])

    def delete_function(self, fid: str) -> None:
        for k in [k for k in self.objects if f"/{fid}/" in k or k.startswith(f"{fid}/")]:
            del self.objects[k]


class MemoryQueues:
    def __init__(self):
        self.training: list[tuple[dict, int]] = []
        self.batch: list[str] = []

    def send_training_message(self, body: dict, delay_seconds: int) -> None:
        self.training.append((body, min(max(delay_seconds, 0), 900)))

    def send_batch_messages(self, bodies: list[str]) -> None:
        self.batch += bodies


def memory_deps(encoders, **settings):
    """A `Deps` whose repositories are these fakes (settings from `settings`, the rest
    defaults): the unit tier's container."""
    from labelloop.container import Deps
    from labelloop.settings import ApiSettings

    # The API's settings: they hold what the training run reads too (its queue, its lease).
    d = Deps(ApiSettings.model_validate({
        "LABELLOOP_TABLE": "t", "LABELLOOP_INVOKES_TABLE": "i", "LABELLOOP_BUCKET": "b",
        "LABELLOOP_TRAINING_QUEUE_URL": "q", "LABELLOOP_BATCH_QUEUE_URL": "bq",
        "LABELLOOP_SIGNING_KEY_FILE": "unused", "LABELLOOP_CACHE_SECONDS": 0, **settings}))
    samples = MemorySamples()
    d.__dict__.update(encoders=encoders, clients=MemoryClients(),
                      functions=MemoryFunctions(), labels=MemoryLabels(),
                      samples=samples, ledger=MemoryLedger(samples), invokes=MemoryInvokes(),
                      model_versions=MemoryModelVersions(),
                      objects=MemoryObjects(), queues=MemoryQueues())
    return d
