"""Use cases: labels. Each change queues a retrain (a changed label set always promotes)."""

from __future__ import annotations

import time

import numpy as np

from labelloop.container import Deps
from labelloop.domain import FunctionItem, LabelItem
from labelloop.errors import BadRequest
from labelloop.ids import bare, new_bare
from labelloop.ml.zeroshot import prior_texts
from labelloop.usecases.common import owned_function, prefixed_conflict, request_training
from labelloop.usecases.inputs import IMAGE

MAX_NAME = 200
MAX_DESCRIPTION = 2000


def _validated(name: str | None, description: str | None) -> tuple[str, str | None]:
    name = (name or "").strip()
    if not name:
        raise BadRequest("name: must not be empty")
    if len(name) > MAX_NAME:
        raise BadRequest(f"name: at most {MAX_NAME} characters")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"description: at most {MAX_DESCRIPTION} characters")
    return name, description or None


def _with_priors(d: Deps, fn: FunctionItem, **fields) -> LabelItem:
    if fn.input == IMAGE:  # a name says nothing about pixels: no zero-shot prior
        return LabelItem(**fields, prior_embeddings=b"", prior_tokens=[])
    f = d.encoders[fn.encoder].featurize(prior_texts(fields["name"], fields.get("description")))
    return LabelItem(**fields, prior_embeddings=np.ascontiguousarray(f.embeddings).tobytes(),
                     prior_tokens=[np.asarray(t, dtype=np.int32).tobytes() for t in f.tokens])


def create_label(d: Deps, client: str, function_id: str, name: str | None,
                 description: str | None = None,
                 metadata: dict[str, str] | None = None) -> LabelItem:
    fn = owned_function(d, client, function_id)
    name, description = _validated(name, description)
    label = _with_priors(d, fn, id=new_bare(), function_id=fn.id, name=name,
                         description=description, metadata=metadata or None,
                         created_at=time.time())
    with prefixed_conflict("existingLabelId", "label"):
        d.labels.create(label)
    request_training(d, fn.id, "labels changed")
    d.serving.invalidate(fn.id)
    return label


def list_labels(d: Deps, client: str, function_id: str) -> list[LabelItem]:
    fn = owned_function(d, client, function_id)
    return sorted(d.labels.list(fn.id), key=lambda lb: lb.id)


def get_label(d: Deps, client: str, function_id: str, label_id: str) -> LabelItem:
    fn = owned_function(d, client, function_id)
    return d.labels.get(fn.id, bare(label_id, "label"))


def update_label(d: Deps, client: str, function_id: str, label_id: str, name: str | None,
                 description: str | None = None,
                 metadata: dict[str, str] | None = None) -> LabelItem:
    fn = owned_function(d, client, function_id)
    old = d.labels.get(fn.id, bare(label_id, "label"))
    name, description = _validated(name, description)
    if (name, description) == (old.name, old.description):
        new = old.model_copy(update={"metadata": metadata or None})
    else:
        new = _with_priors(d, fn, id=old.id, function_id=fn.id, name=name, description=description,
                           metadata=metadata or None, created_at=old.created_at)
    d.labels.replace(old, new)
    if (name, description) != (old.name, old.description):
        request_training(d, fn.id, "label renamed or described")  # priors changed
    d.serving.invalidate(fn.id)
    return new


def delete_label(d: Deps, client: str, function_id: str, label_id: str) -> None:
    """Deletes the label and clears the annotations that name it; predictions that named it
    renormalise over the remaining labels until the retrain it queues is live."""
    fn = owned_function(d, client, function_id)
    label = d.labels.get(fn.id, bare(label_id, "label"))
    d.labels.delete(label)
    for s in d.samples.facts(fn.id):
        if s.annotation == label.id:
            d.samples.set_annotation(fn.id, s.id, None, was=label.id, quiet=True)
    request_training(d, fn.id, "label deleted")
    d.serving.invalidate(fn.id)
