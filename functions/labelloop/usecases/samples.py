"""Use cases: samples and annotations (the training data), and feedback on invokes."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from labelloop.container import Deps
from labelloop.domain import FunctionItem, InvokeItem, Origin, SampleItem, predicted
from labelloop.errors import BadRequest, Conflict, DomainError, NotFound
from labelloop.ids import bare, created_at, full, new_bare
from labelloop.serving import Prediction
from labelloop.usecases import inputs
from labelloop.usecases.common import (
    owned_function,
    prefix_conflict,
    prefixed_conflict,
    request_training,
)

MAX_PAGE = 1000
_DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_EXTERNAL_ID = 1024
IMPORT_CHUNK = 200  # a bulk import's items embedded (and then written) together

# How long after an invoke its record may still be on its way (see `_invoke_record`).
INVOKE_RECORD_GRACE_SECONDS = 3.0
# Reads and writes of an annotation a concurrent change can make stale (then it reads again).
_ATTEMPTS = 3


@dataclass(frozen=True)
class SampleView:
    sample: SampleItem
    prediction: Prediction | None


@dataclass(frozen=True)
class LabelRef:
    """An annotation as the API names it: by label id or by label name."""

    label_id: str | None = None
    label_name: str | None = None


def _resolve_label(d: Deps, fn: FunctionItem, ref: LabelRef, field: str) -> str:
    """From the cached view (no query per sample during an import); a miss re-reads once, as
    the label may have been created a moment ago through another container."""
    try:
        return _find_label(d.serving.view(fn.id).labels.values(), ref, field)
    except BadRequest:
        d.serving.invalidate(fn.id)
        return _find_label(d.labels.list(fn.id), ref, field)  # consistent read


def _find_label(labels, ref: LabelRef, field: str) -> str:
    if ref.label_id:
        lid = bare(ref.label_id, "label", f"{field}.labelId")
        if any(lb.id == lid for lb in labels):
            return lid
        raise BadRequest(f"{field}.labelId: no label {ref.label_id!r} in this function")
    if ref.label_name is not None:
        name = ref.label_name.strip()
        for lb in labels:
            if lb.name == name:
                return lb.id
        raise BadRequest(f"{field}.labelName: no label named {name!r} in this function "
                         "(create it first with POST .../labels)")
    raise BadRequest(f"{field}: give labelId or labelName")


def create_sample(d: Deps, client: str, function_id: str, data, external_id: str | None = None,
                  annotation: LabelRef | None = None) -> SampleView:
    fn = owned_function(d, client, function_id)
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise BadRequest(f"externalId: at most {MAX_EXTERNAL_ID} characters")
    label_id = _resolve_label(d, fn, annotation, "annotation") if annotation else None
    inp = inputs.read(d, fn, data, views=label_id is not None)
    sample = SampleItem.new(fn.id, new_bare(), inp.data, inp.features, Origin.API,
                            external_id=external_id, annotation=label_id, views=inp.views)
    inputs.keep(d, fn, inp)
    with prefixed_conflict("existingSampleId", "sample"):
        d.samples.create(sample)
    if label_id:
        request_training(d, fn.id, "samples annotated")
    view = d.serving.view(fn.id)
    return SampleView(sample, view.sample_prediction(sample))


@dataclass(frozen=True)
class NewSample:
    """One item of a bulk import."""

    data: object
    external_id: str | None = None
    annotation: LabelRef | None = None


def create_samples(d: Deps, client: str, function_id: str, items: list[NewSample],
                   train: bool = True) -> list[SampleView | DomainError]:
    """A bulk import: per item, in order, the sample or the error it would have had alone
    (a 400 naming `samples[i].<field>`, a 409 with `existingSampleId`, the same picture or
    text twice in one request included). Texts are embedded in batches; samples are written
    with their data-hash claims, 50 to a transaction (`data.samples.create_many`); one
    training request at the end (`train` False: none, for an import in several requests
    that asks once, after its last one, with `POST …/train`)."""
    fn = owned_function(d, client, function_id)
    out: list[SampleItem | DomainError | None] = [None] * len(items)
    ready: list[tuple[int, NewSample, str | None, object]] = []
    for i, item in enumerate(items):
        field = f"samples[{i}]"
        try:
            if item.external_id is not None and len(item.external_id) > MAX_EXTERNAL_ID:
                raise BadRequest(f"{field}.externalId: at most {MAX_EXTERNAL_ID} characters")
            label_id = (_resolve_label(d, fn, item.annotation, f"{field}.annotation")
                        if item.annotation else None)
            if fn.input == inputs.IMAGE:  # read (and embed) one by one: no batch to gain
                read = inputs.read(d, fn, item.data, f"{field}.data", views=label_id is not None)
            else:
                read = inputs.checked_text(item.data, f"{field}.data")
            ready.append((i, item, label_id, read))
        except DomainError as err:
            out[i] = err
    # Texts: each chunk is written while the next is embedded (the encoder releases the GIL;
    # a 1,000-sample request spent a quarter of its time writing after its embedding).
    # Chunks are written one after another, in order, so a duplicate in a later chunk meets
    # the claim of the first as one transaction's would.
    failed = threading.Event()

    def write(samples: list[SampleItem]) -> list[Conflict | None]:
        if failed.is_set():
            return []  # an earlier chunk's write failed: its error answers the request
        try:
            return d.samples.create_many(samples)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(1, thread_name_prefix="import-write") as writer:
        pending = []
        for at in range(0, len(ready), IMPORT_CHUNK):
            if failed.is_set():
                break
            made = _new_samples(d, fn, ready[at:at + IMPORT_CHUNK], out)
            pending.append((made, writer.submit(write, [s for _, s in made])))
        for made, written in pending:
            for (i, sample), conflict in zip(made, written.result(), strict=True):
                out[i] = (prefix_conflict(conflict, "existingSampleId", "sample") if conflict
                          else sample)
    annotated = any(isinstance(r, SampleItem) and r.annotation for r in out)
    if annotated and train:
        request_training(d, fn.id, "samples imported")
    view = d.serving.view(fn.id)
    return [SampleView(r, view.sample_prediction(r)) if isinstance(r, SampleItem) else r
            for r in out]


def _new_samples(d: Deps, fn: FunctionItem,
                 ready: list[tuple[int, NewSample, str | None, object]],
                 out: list) -> list[tuple[int, SampleItem]]:
    """The samples of validated items (index, item, label id, text or read Input), texts
    embedded in batches; a picture that cannot be kept gets its error in `out`."""
    texts = [r for *_, r in ready if isinstance(r, str)]
    embedded = d.encoders[fn.encoder].featurize(texts) if texts else None
    made: list[tuple[int, SampleItem]] = []
    at = 0
    for i, item, label_id, read in ready:
        if isinstance(read, str):
            inp, at = inputs.Input(read, embedded.take([at])), at + 1
        else:
            inp = read
        try:
            inputs.keep(d, fn, inp)  # before the sample that names the picture
        except DomainError as err:
            out[i] = err
            continue
        made.append((i, SampleItem.new(fn.id, new_bare(), inp.data, inp.features, Origin.API,
                                       external_id=item.external_id, annotation=label_id,
                                       views=inp.views)))
    return made


def get_sample(d: Deps, client: str, function_id: str, sample_id: str) -> SampleView:
    fn = owned_function(d, client, function_id)
    sample = d.samples.get(fn.id, bare(sample_id, "sample"))
    return SampleView(sample, d.serving.view(fn.id).sample_prediction(sample))


def list_samples(d: Deps, client: str, function_id: str, batch_size: int, descending: bool,
                 after: str | None, external_id: str | None = None,
                 origin: str | None = None) -> tuple[list[SampleView], str | None]:
    fn = owned_function(d, client, function_id)
    if not 1 <= batch_size <= MAX_PAGE:
        raise BadRequest(f"batchSize: between 1 and {MAX_PAGE}")
    after_id = bare(after, "sample", "after") if after else None
    samples, next_after = d.samples.page(fn.id, batch_size, descending, after_id,
                                         external_id, origin)
    view = d.serving.view(fn.id)
    return [SampleView(s, view.sample_prediction(s)) for s in samples], next_after


def get_image(d: Deps, client: str, function_id: str, digest: str) -> tuple[bytes, str]:
    """(bytes, content type) of an image the function's samples or invokes name."""
    fn = owned_function(d, client, function_id)
    if not _DIGEST.fullmatch(digest):
        raise BadRequest("digest: 64 lowercase hex digits (an image's sha256)")
    return d.objects.get_image(fn.id, digest)


def delete_sample(d: Deps, client: str, function_id: str, sample_id: str) -> None:
    fn = owned_function(d, client, function_id)
    sample = _write_fresh(d, fn.id, bare(sample_id, "sample"), d.samples.delete)
    if sample.buffer is not None:
        d.captures.invalidate(fn.id, left=sample.id)
    if sample.annotation:
        request_training(d, fn.id, "annotated sample deleted")


def annotate(d: Deps, client: str, function_id: str, sample_id: str,
             ref: LabelRef) -> SampleView:
    """Annotate a sample; an invoke's sampleId (within the invoke retention) works too: the
    application's correction turns the invoke into an annotated sample."""
    fn = owned_function(d, client, function_id)
    sid = bare(sample_id, "sample")
    label_id = _resolve_label(d, fn, ref, "annotation")
    try:
        sample = _annotate_stored(d, fn, sid, label_id)
    except NotFound:
        sample = _sample_from_invoke(d, fn, sid, label_id)
    request_training(d, fn.id, "samples annotated")
    return SampleView(sample, d.serving.view(fn.id).sample_prediction(sample))


def _annotate_stored(d: Deps, fn: FunctionItem, sid: str, label_id: str) -> SampleItem:
    """Annotate a stored sample; a captured one leaves the buffer and frees its slot in the
    same write. A reviewer racing another (both saw it buffered) retries as a plain edit.
    A picture's first annotation brings its training views along."""
    fid = fn.id

    def write(sample: SampleItem) -> None:
        views = (inputs.annotated(d, fn, sample.data)[1]
                 if sample.views is None and inputs.is_image(sample.data) else None)
        d.samples.set_annotation(fid, sid, label_id, was=sample.annotation,
                                 buffer=sample.buffer, views=views)

    if _write_fresh(d, fid, sid, write).buffer is not None:
        d.captures.invalidate(fid, left=sid)
    return d.samples.get(fid, sid)


def _write_fresh(d: Deps, fid: str, sid: str, write) -> SampleItem:
    """Read the sample and `write` from what was read; a write that finds it changed
    meanwhile (Conflict: the counts move from what was read) reads again, `_ATTEMPTS` times
    in all. The sample as the write that succeeded read it."""
    for attempt in range(_ATTEMPTS):
        sample = d.samples.get(fid, sid)
        try:
            write(sample)
            return sample
        except Conflict:
            if attempt == _ATTEMPTS - 1:
                raise
    raise ValueError("_ATTEMPTS must be at least 1")


def _sample_from_invoke(d: Deps, fn: FunctionItem, sid: str, label_id: str) -> SampleItem:
    record = _invoke_record(d, fn, sid)
    if record is None:
        raise NotFound(f"sample {full(sid, 'sample')!r} not found (nor an invoke within the "
                       f"function's {fn.invoke_retention_days}-day invoke retention)")
    features, views = inputs.annotated(d, fn, record.data)
    sample = SampleItem.new(fn.id, sid, record.data, features, Origin.FEEDBACK,
                            external_id=record.external_id, annotation=label_id, views=views,
                            **predicted(record.model_version, record))
    try:
        d.samples.create(sample)
    except Conflict as err:
        # The same text is already a sample: annotate that one instead.
        existing = err.extra.get("existingSampleId")
        if not existing:
            raise
        return _annotate_stored(d, fn, existing, label_id)
    return sample


def _invoke_record(d: Deps, fn: FunctionItem, sid: str) -> InvokeItem | None:
    """The invoke's record; for a just-made sampleId, waits for it a little: the record is
    written after the invoke's response, so feedback sent at once can arrive first."""
    made = created_at(sid)
    fresh = fn.store_invokes and made is not None and (
        0 <= time.time() - made <= INVOKE_RECORD_GRACE_SECONDS)
    while True:
        record = d.invokes.get(fn.id, sid, time.time())
        if record is not None or not fresh or time.time() > made + INVOKE_RECORD_GRACE_SECONDS:
            return record
        time.sleep(0.05)


def clear_annotation(d: Deps, client: str, function_id: str, sample_id: str) -> None:
    """A captured sample goes back to the review queue (its strategy's buffer, at its old
    priority) while that strategy has a free slot: clearing is how a reviewer undoes."""
    fn = owned_function(d, client, function_id)
    sample = d.samples.get(fn.id, bare(sample_id, "sample"))
    returned = False
    if sample.capture_reason and sample.buffer is None and sample.annotation:
        quotas = {b.name: b.quota for b in fn.capture_policy.budgets()}
        if sample.capture_reason in quotas:
            try:
                d.ledger.return_to_buffer(sample, quotas[sample.capture_reason])
                returned = True
                d.captures.invalidate(fn.id)
            except Conflict:
                pass  # full (or changed meanwhile): it stays an unannotated sample
    if not returned:
        _write_fresh(d, fn.id, sample.id,
                     lambda s: d.samples.set_annotation(fn.id, s.id, None, was=s.annotation))
    request_training(d, fn.id, "annotation removed")
