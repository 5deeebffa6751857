"""Use cases: batch invoke. A job's items travel as SQS messages (parts) of bounded size; the
worker embeds a part in encoder batches, predicts with the live model, stores invoke records
and offers each item to the capture policy as an HTTP invoke would, writes one JSON-lines
object per part to S3, and counts the part into its job once.

Redelivery is harmless: the handler answers a message it has finished from its idempotency
record, and a retry after a half-done run writes the same things again: sample ids derive from
the message (so invoke records are overwritten, and a capture of the same text is refused by
its data-hash claim), the part's S3 key is fixed, and the job counts a part only if its part
marker is new.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labelloop.chunking import bounded_chunks
from labelloop.container import Deps
from labelloop.data.objects import results_part
from labelloop.domain import BatchJobItem, InvokeItem
from labelloop.encoder import Features
from labelloop.errors import BadRequest, NotFound, NotReady
from labelloop.ids import bare, full, new_bare
from labelloop.serving import Prediction, View, predict
from labelloop.usecases import batch_inputs
from labelloop.usecases.batch_inputs import Picture
from labelloop.usecases.capture import Offer, capture_many
from labelloop.usecases.common import owned_function
from labelloop.usecases.inputs import TEXT
from labelloop.usecases.samples import MAX_EXTERNAL_ID

log = logging.getLogger(__name__)

MAX_ITEMS = 10_000  # per API request (its body is capped at 256 KiB anyway)
PART_ITEMS = 250  # items per message: a few seconds of encoder work
PART_BYTES = 192 * 1024  # a message body, with room under SQS's 256 KiB
EMBED_BATCH = 32
SLAB = 64  # texts embedded before their writes are handed to the writer threads
# The last slab's writes cannot hide behind the encoder: it is kept short.
LAST_SLAB = 16
RESULTS_PAGE = 1000  # result lines per page, at least one whole part
JOB_ID = r"^[A-Za-z0-9_-]{1,100}$"  # API job ids, SQS message ids (UUIDs), senders' own


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Any = None
    # Checked per item, not here: a bad item gets an error line; the rest of the part goes on.
    data: Any = None


class BatchMessage(BaseModel):
    """The batch queue's message body. Senders with AWS access may send it themselves."""

    model_config = ConfigDict(extra="ignore")

    functionId: str
    jobId: str | None = Field(None, pattern=JOB_ID)  # absent: the SQS message id
    # A job's done parts are a number set on its item (400 KB at most): 10,000 parts at most.
    part: int = Field(0, ge=0, lt=10_000)
    parts: int = Field(1, ge=1, le=10_000)  # of a job no API request declared
    offset: int = Field(0, ge=0)  # the index of the part's first item in its job
    items: list[BatchItem] = Field(min_length=1)
    capture: bool = True


# -- submit (API) ---------------------------------------------------------------------------

def submit(d: Deps, client: str, function_id: str, items: list[dict],
           capture: bool = True) -> BatchJobItem:
    """Declare a job and queue its parts. `items`: [{"id"?, "data"}]."""
    fn = owned_function(d, client, function_id)
    if d.serving.live_view(fn.id).model is None:
        raise NotReady("this function has no model yet: add labels (training starts by itself "
                       "a few seconds later) and retry")
    job_id = "batch_" + new_bare()
    parts = split(items)
    bodies = [BatchMessage(functionId=fn.id, jobId=job_id, part=n, parts=len(parts),
                           offset=offset, items=chunk, capture=capture
                           ).model_dump_json(exclude_none=True)
              for n, (offset, chunk) in enumerate(parts)]
    job = BatchJobItem(function_id=fn.id, id=job_id, parts=len(bodies), total=len(items),
                       capture=capture, created_at=time.time())
    d.jobs.create(job)
    try:
        d.queues.send_batch_messages(bodies)
    except Exception as err:
        # End the job as Failed rather than leave it queued forever; a part that did get
        # queued finds its marker and is not counted twice.
        for n, (_, chunk) in enumerate(parts):
            d.jobs.complete_part(fn.id, job_id, n, len(parts), len(chunk), len(chunk),
                                 time.time(), f"not queued: {type(err).__name__}: {err}")
        raise
    return job


def split(items: list[dict]) -> list[tuple[int, list[dict]]]:
    """(offset, items) per part: at most PART_ITEMS items and PART_BYTES of JSON each."""
    return bounded_chunks(items, lambda item: len(json.dumps(item, ensure_ascii=False)
                                                  .encode()) + 2, PART_ITEMS, PART_BYTES)


# -- status and results (API) ---------------------------------------------------------------

def get_job(d: Deps, client: str, function_id: str, job_id: str) -> BatchJobItem:
    fn = owned_function(d, client, function_id)
    if not re.match(JOB_ID, job_id):
        raise BadRequest("jobId: not a batch job id")
    return d.jobs.get(fn.id, job_id)


def results(d: Deps, client: str, function_id: str, job_id: str,
            after: int | None = None) -> tuple[list[dict], int | None]:
    """Result lines of the finished parts in part order, from after part `after` on: whole
    parts until at least RESULTS_PAGE lines. Returns the lines and the part to continue after
    (None: no more so far)."""
    job = get_job(d, client, function_id, job_id)
    lines: list[dict] = []
    last = None
    for key in d.objects.result_keys(job.function_id, job.id, after):
        if len(lines) >= RESULTS_PAGE:
            return lines, last
        lines += [json.loads(x) for x in d.objects.get_results(key).splitlines() if x.strip()]
        last = results_part(key)
    return lines, None


# -- the worker -----------------------------------------------------------------------------

@dataclass
class PartResult:
    job_id: str | None
    part: int
    items: int = 0
    failed: int = 0
    counted: bool = False  # False: counted before (a redelivery after a half-done run)
    dropped: bool = False  # the function was deleted since
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def run_part(d: Deps, message: BatchMessage, message_id: str, sent_ms: int) -> PartResult:
    """One message. Raises (so that SQS retries it, then parks it in the DLQ) for an unknown
    function or one without a usable model; a bad item only gets an error line."""
    fid = bare(message.functionId, "function")
    try:
        view = d.serving.live_view(fid)
    except NotFound:
        if d.functions.deleted(fid):
            return PartResult(message.jobId or message_id, message.part, dropped=True)
        raise
    if view.model is None:
        raise NotReady(f"function {fid!r} has no model yet")
    model, fn = view.model, view.function
    job_id = message.jobId or message_id
    clock = _Clock()

    lines: list[dict] = []
    # (position in the part, the checked text or picture reference, item id)
    todo: list[tuple[int, str | Picture, str | None]] = []
    for i, item in enumerate(message.items):
        line = {"index": message.offset + i, **({} if item.id is None else {"id": item.id})}
        try:
            todo.append((i, batch_inputs.checked(d, fn, item.data), _item_id(item.id)))
        except BadRequest as err:
            line["error"] = err.message
        lines.append(line)
    clock.lap("parse")
    # Slabs in length order (as `Encoder.featurize` batches a whole list: little padding);
    # each slab's writes run on two writer threads while the encoder works on the next one,
    # so that their I/O hides behind the encoder: invoke records on one, captures on the
    # other (in slab order: each slab decides on the state the previous one left).
    if fn.input == TEXT:
        todo.sort(key=lambda t: len(t[1]))
    with (ThreadPoolExecutor(1, thread_name_prefix="batch-records") as record_writer,
          ThreadPoolExecutor(1, thread_name_prefix="batch-captures") as capture_writer):
        pending = []
        for start, end in _slabs(len(todo)):
            slab = todo[start:end]
            got = batch_inputs.embedded(d, fn, [x for _, x, _ in slab], EMBED_BATCH)
            for k, error in got.errors.items():
                lines[slab[k][0]]["error"] = error
            clock.lap("embed")
            if not got.ok:
                continue
            predictions = predict(model, view.labels, got.features)
            if not predictions:
                raise NotReady("the model's labels were all deleted; a retrain is queued")
            records = []
            now = time.time()
            for (i, _, ext), text, p in zip([slab[k] for k in got.ok], got.data, predictions,
                                            strict=True):
                sid = _sample_id(sent_ms, message_id, i)
                lines[i] |= {"labelId": full(p.label_id, "label"),
                             "labelName": view.labels[p.label_id].name,
                             "confidence": round(p.confidence, 6),
                             "modelVersion": model.version, "sampleId": full(sid, "sample"),
                             **(view.decisions.fields(p.label_id, p.confidence)
                                if view.decisions else {})}
                records.append(InvokeItem.answered(fid, sid, text, ext, model.version, p,
                                                   fn.invoke_retention_days, now))
            clock.lap("predict")
            # As for HTTP invokes: no record, no capture, when the function stores no invokes.
            if fn.store_invokes:
                stored = record_writer.submit(_store_records, d, fid, got.pictures, records)
                pending.append(stored)
                if message.capture:
                    # A capture names its picture too: it waits for the pictures to be stored.
                    pending.append(capture_writer.submit(
                        _capture_slab, d, view, records, predictions, got.features,
                        stored if got.pictures else None))
        for f in pending:
            writer_seconds = f.result()  # a failed write fails the message: it is retried
            for k, v in writer_seconds.items():
                clock.laps[k] = round(clock.laps.get(k, 0.0) + v, 6)
        clock.lap("wait_for_writer")
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    d.objects.put_results(fid, job_id, message.part, body)
    failed = sum("error" in line for line in lines)
    counted = d.jobs.complete_part(fid, job_id, message.part, message.parts, len(lines),
                                   failed, time.time())
    clock.lap("results_and_job")
    return PartResult(job_id, message.part, len(lines), failed, counted, seconds=clock.laps)


def _slabs(n: int) -> list[tuple[int, int]]:
    """(start, end) of each slab of `n` texts: at most SLAB each, the last LAST_SLAB."""
    cut = max(n - LAST_SLAB, 0)
    k = math.ceil(cut / SLAB)
    bounds = [round(i * cut / k) for i in range(k + 1)] if k else [0]
    return [(a, b) for a, b in itertools.pairwise([*bounds, n]) if b > a]


def _store_records(d: Deps, fid: str, pictures: list[tuple[str, bytes, str]],
                   records: list[InvokeItem]) -> dict[str, float]:
    """A slab's pictures, then its invoke records (BatchWriteItem: a record never names a
    picture that is not stored); returns the seconds it took."""
    t0 = time.perf_counter()
    for digest, body, content_type in pictures:
        d.objects.put_image(fid, digest, body, content_type)
    d.invokes.put_many(records)
    return {"writer_invoke_records": round(time.perf_counter() - t0, 6)}


def _capture_slab(d: Deps, view: View, records: list[InvokeItem], predictions: list[Prediction],
                  features: Features, pictures_stored: Future | None = None
                  ) -> dict[str, float]:
    """A slab's items offered to the capture policy (their captures in one transaction);
    returns the seconds it took."""
    t0 = time.perf_counter()
    try:
        if pictures_stored is not None:
            pictures_stored.result()
        capture_many(d, view, view.model, [
            Offer(p, features.take([k]), r.sample_id, r.data, r.external_id)
            for k, (r, p) in enumerate(zip(records, predictions, strict=True))])
    except Exception:
        # As after an HTTP invoke's response: a failed capture costs its candidates.
        log.exception("capture of a batch slab failed")
    return {"writer_capture": round(time.perf_counter() - t0, 6)}


def fail_part(d: Deps, message: BatchMessage, message_id: str, error: str) -> bool:
    """The message's last attempt failed: count its items as failed, so that the job ends
    (Failed) instead of waiting for a part parked in the DLQ."""
    try:
        fid = bare(message.functionId, "function")
        d.functions.get(fid)
    except (NotFound, BadRequest):
        return False  # no such function: no job to tell
    n = len(message.items)
    return d.jobs.complete_part(fid, message.jobId or message_id, message.part,
                                message.parts, n, n, time.time(), error)


def _item_id(value: Any) -> str | None:
    """A batch item's id, which becomes its invoke's externalId."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest("id: must be a string")
    value = str(value)
    if len(value) > MAX_EXTERNAL_ID:
        raise BadRequest(f"id: at most {MAX_EXTERNAL_ID} characters")
    return value


def _sample_id(sent_ms: int, message_id: str, position: int) -> str:
    """Time-ordered like any sample id (the message's send time), but the same on every
    delivery of the message."""
    return new_bare(sent_ms, hashlib.sha256(f"{message_id}#{position}".encode()).digest())


class _Clock:
    def __init__(self):
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        t = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + t - self._t, 6)
        self._t = t
