"""The spread rules of a strategy's buffer, so that it covers the model's boundary instead of
one spot of it: a candidate too similar to a buffered item (cosine at least the policy's
`spread_cosine`, under the near-duplicate cut that refuses it outright), or whose predicted
label already holds its cap of the strategy's slots, may only take the place of that item
(the least informative of that label's), and only if it is more informative (`decide`).

Pure: the buffered items come from the container's cached view (`CaptureCache`), which
another container's captures reach at its next read; a rival gone meanwhile fails the
capture's transaction, harmlessly. The random strategy is exempt (`Strategy.spread`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from labelloop.capture.decide import Buffered, Slot


def label_cap(quota: int, share: float, labels: int) -> int:
    """The most of a strategy's `quota` slots one predicted label may hold: `share` of them,
    or twice an even share when that is more (a function of two labels is not capped)."""
    return max(1, math.ceil(quota * max(share, 2.0 / max(labels, 1))))


def rival(items: Sequence[Buffered], stacked: np.ndarray, embedding: np.ndarray,
          label_id: str, cosine: float, cap: int) -> Slot | None:
    """The buffered item a candidate must beat to enter, or None: the most similar one if at
    least `cosine`, else, when its label holds `cap` items, that label's least informative.
    `stacked`: the items' embeddings as rows, in order."""
    if not items:
        return None
    sims = stacked @ embedding.astype(stacked.dtype)
    nearest = int(np.argmax(sims))
    if float(sims[nearest]) >= cosine:
        return items[nearest].slot
    same = [i.slot for i in items if i.label_id == label_id]
    if len(same) >= cap:
        return min(same, key=lambda s: s.priority)
    return None
