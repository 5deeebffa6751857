"""Nearest neighbours of a sample by embedding: "label these alike at once" in the review
queue, for the console and API clients alike."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from labelloop.capture.strategies import STRATEGIES
from labelloop.container import Deps
from labelloop.domain import SampleVector
from labelloop.errors import BadRequest
from labelloop.ids import bare
from labelloop.usecases.common import owned_function
from labelloop.usecases.samples import MAX_PAGE, SampleView

MAX_SIMILAR = 100


def similar_samples(d: Deps, client: str, function_id: str, sample_id: str, limit: int,
                    in_review_queue: bool) -> list[tuple[SampleView, float]]:
    """The `limit` samples nearest to this one (cosine of the stored embeddings, which are
    unit-norm), nearest first; with `in_review_queue`, only items still to review."""
    fn = owned_function(d, client, function_id)
    if not 1 <= limit <= min(MAX_SIMILAR, MAX_PAGE):
        raise BadRequest(f"batchSize: between 1 and {MAX_SIMILAR}")
    target = d.samples.get(fn.id, bare(sample_id, "sample"))
    rows: Iterable[SampleVector]
    if in_review_queue:
        rows = (r for name in STRATEGIES for r in d.ledger.buffered(fn.id, name))
    else:
        rows = d.samples.vectors(fn.id)
    ids, vectors = [], []
    for row in rows:
        if row.id != target.id:
            ids.append(row.id)
            vectors.append(row.embedding)
    if not ids:
        return []
    scores = np.stack(vectors) @ target.features().embeddings[0]
    top = np.argsort(-scores, kind="stable")[:limit]
    view = d.serving.view(fn.id)
    score = {ids[i]: float(scores[i]) for i in top}
    # One read for all of them; any dismissed or deleted since the query is left out.
    return [(SampleView(s, view.sample_prediction(s)), score[s.id])
            for s in d.samples.get_many(fn.id, list(score))]
