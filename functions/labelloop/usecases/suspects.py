"""Use cases: the suspected-mislabel queue (`GET .../review?strategy=suspect`) and keeping a
suspect's label. Relabelling is the ordinary annotation, deleting the ordinary sample delete.

The queue is the live version's suspects (`labelloop.ml.suspects`, from the cross-validated
probabilities every training run stores), less the samples changed since: a sample relabelled
after that run waits for the next one to be judged again, one whose label a reviewer kept is
not suspected again while it keeps that label, and a deleted one is gone (so is one predicted
as a label deleted since). Reading is all it costs: no write happens until a reviewer acts.
"""

from __future__ import annotations

from dataclasses import dataclass

from labelloop.container import Deps
from labelloop.domain import SampleItem
from labelloop.errors import Conflict
from labelloop.ids import bare
from labelloop.ml.suspects import Suspect, suspects
from labelloop.usecases.common import owned_function

SUSPECT = "suspect"  # the review queue's name for it (`?strategy=suspect`)
_GET_MANY = 100  # samples per BatchGetItem


@dataclass(frozen=True)
class SuspectView:
    sample: SampleItem
    suspect: Suspect
    model_version: int


def suspect_queue(d: Deps, client: str, function_id: str, limit: int) -> list[SuspectView]:
    fn = owned_function(d, client, function_id)
    if fn.live is None:
        return []
    live = d.serving.model(fn.id, fn.live)
    labels = d.serving.view(fn.id).labels  # a label deleted since is nobody's answer
    ranked = [x for x in suspects(live.meta.trained, live.meta.cv) if x.predicted in labels]
    out: list[SuspectView] = []
    for at in range(0, len(ranked), _GET_MANY):
        chunk = ranked[at:at + _GET_MANY]
        found = {s.id: s for s in d.samples.get_many(fn.id, [x.sample_id for x in chunk])}
        for x in chunk:
            s = found.get(x.sample_id)
            if s is not None and s.annotation == x.annotated and s.kept != s.annotation:
                out.append(SuspectView(s, x, fn.live))
                if len(out) == limit:
                    return out
    return out


def keep(d: Deps, client: str, function_id: str, sample_id: str) -> SampleItem:
    """A reviewer confirms a sample's current label: it leaves the suspect queue."""
    fn = owned_function(d, client, function_id)
    sample = d.samples.get(fn.id, bare(sample_id, "sample"))
    if sample.annotation is None:
        raise Conflict(f"sample {sample_id!r} has no annotation to keep")
    d.samples.keep(fn.id, sample.id, sample.annotation)
    return sample.model_copy(update={"kept": sample.annotation})
