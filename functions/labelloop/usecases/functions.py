"""Use cases: classification functions."""

from __future__ import annotations

import time
from collections import Counter

from labelloop.container import Deps
from labelloop.domain import FunctionItem, SampleCounts
from labelloop.encoder import ENCODERS, IMAGE_ENCODER
from labelloop.errors import BadRequest
from labelloop.ids import full, new_bare
from labelloop.usecases.common import is_training, owned_function
from labelloop.usecases.inputs import IMAGE, INPUTS

OUTPUTS = ("Classification",)


def create_function(d: Deps, client: str, name: str | None, input: str, output: str,
                    store_invokes: bool | None = None,
                    invoke_retention_days: int | None = None,
                    encoder: str | None = None) -> FunctionItem:
    if input not in INPUTS:
        raise BadRequest(f"input: {input!r} is not supported (supported: {', '.join(INPUTS)})")
    if output not in OUTPUTS:
        raise BadRequest(f"output: {output!r} is not supported (supported: "
                         f"{', '.join(OUTPUTS)})")
    if input == IMAGE:  # one encoder for images
        if encoder not in (None, IMAGE_ENCODER):
            raise BadRequest(f"encoder: an Image function uses the {IMAGE_ENCODER!r} encoder")
        encoder = IMAGE_ENCODER
    encoder = encoder or d.settings.default_encoder
    if encoder not in ENCODERS and input != IMAGE:
        raise BadRequest(f"encoder: {encoder!r} is not supported (supported: "
                         f"{', '.join(ENCODERS)})")
    if not d.encoders.available(encoder):
        raise BadRequest(f"encoder: {encoder!r} is not built in this deployment (build it with "
                         f"`scripts/build_encoder.py --encoder {encoder}`)")
    fn = FunctionItem(
        id=new_bare(), client=client, name=(name or "").strip() or "NewFunction", input=input,
        output=output, encoder=encoder, created_at=time.time(),
        store_invokes=True if store_invokes is None else store_invokes,
        invoke_retention_days=invoke_retention_days or d.settings.default_invoke_retention_days)
    d.functions.put(fn)
    return fn


def list_functions(d: Deps, client: str) -> list[FunctionItem]:
    return sorted(d.functions.list(client), key=lambda f: f.id)


def update_function(d: Deps, client: str, function_id: str, **changes) -> FunctionItem:
    fn = owned_function(d, client, function_id)
    changes = {k: v for k, v in changes.items() if v is not None}
    # A client may send back the function it read: the same encoder is no change.
    if changes.pop("encoder", fn.encoder) != fn.encoder:
        raise BadRequest("encoder: fixed when a function is created (its samples' embeddings "
                         "come from it); create a new function to use another")
    if "name" in changes:
        changes["name"] = changes["name"].strip() or fn.name
    if changes:
        d.functions.update(fn.id, **changes)
        d.serving.invalidate(fn.id)
    return fn.model_copy(update=changes)


def delete_function(d: Deps, client: str, function_id: str) -> None:
    fn = owned_function(d, client, function_id)
    d.functions.delete(fn.id)
    d.objects.delete_function(fn.id)
    d.functions.bury(fn.id)
    d.serving.invalidate(fn.id)


def function_state(d: Deps, fn: FunctionItem, zero_shot_live: bool | None) -> str:
    """Nyckel's v0.9 state: Browsing once a trained model serves, Annotating before that."""
    if fn.live is not None and zero_shot_live is False:
        return "Browsing"
    return "Training" if is_training(d, fn) and fn.live is None else "Annotating"


def metrics(d: Deps, client: str, function_id: str) -> dict:
    """What the SDK reads to decide `has_trained_model()`: not training, and every sample
    predicted by the live model (true of every stored sample once a trained model is live,
    since predictions come from the stored embeddings)."""
    fn = owned_function(d, client, function_id)
    labels = {lb.id for lb in d.labels.list(fn.id)}
    model = d.serving.model(fn.id, fn.live) if fn.live else None  # fresh, not the 2 s view
    kept = d.samples.counts(fn.id)
    if kept is None:  # a function from before counts were kept: count its samples
        every = list(d.samples.facts(fn.id))
        kept = SampleCounts(len(every), dict(Counter(s.annotation for s in every)))
    total = kept.samples
    counts = {lid: n for lid, n in kept.annotated.items() if lid in labels}
    trained = model is not None and not model.head.zero_shot
    return {
        "isTraining": is_training(d, fn),
        "sampleCount": total,
        "predictionCount": total if trained else 0,
        "annotatedLabelCounts": {full(k, "label"): n for k, n in counts.items()},
        "labelCount": len(labels),
        "liveModelVersion": fn.live,
        "lastTrainingError": fn.last_train_error,
    }
