"""Use case: whether a training run searches its settings again or retrains warm.

A warm retrain (`labelloop.ml.warm_start`) keeps the live version's C, lexical weight and
temperature and starts from its weights: about a third of one plain fit on 15,000 samples
(scripts/bench_head.py), where the search is several. It is chosen when all of these hold:

- the live version is a trained head over the same labels (a changed label set, a zero-shot
  live version, or a version written before retrains were warm: search);
- `force` is not set (a forced run searches and promotes);
- the function has at least `warm_min_samples` annotated samples (below that a search takes a
  second or two, and the settings matter most);
- since the last search, the samples changed (added, relabelled or removed) by at most
  `search_growth` of the samples that search had, counting this run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from labelloop.ml.warm_start import WarmStart
from labelloop.serving import LiveModel, Search


@dataclass(frozen=True)
class Plan:
    warm: WarmStart | None  # None: search
    reason: str
    # Warm only: the live version's search record, and the samples changed since that search
    # (this run's included).
    searched: Search | None = None
    changed: int = 0


def plan(live: LiveModel | None, label_ids: set[str], ids: Sequence[str],
         fresh: np.ndarray | None, force: bool, min_samples: int, growth: float) -> Plan:
    """`ids`: the annotated samples this run trains on; `fresh[i]`: whether sample i is new or
    relabelled since the live version (None when there is nothing to compare with)."""
    if force:
        return Plan(None, "forced")
    if live is None or live.head.zero_shot or fresh is None:
        return Plan(None, "no trained live version")
    if set(live.meta.label_ids) != label_ids:
        return Plan(None, "label set changed")
    search = live.meta.search
    if search is None:
        return Plan(None, "live version has no search record")
    present = set(ids)
    removed = sum(1 for sid in live.meta.trained if sid not in present)
    changed = search.changed + int(fresh.sum()) + removed
    if len(ids) < min_samples:
        return Plan(None, f"fewer than {min_samples} annotated samples")
    if changed > growth * search.samples:
        return Plan(None, f"{changed} samples changed since the search on {search.samples}")
    cv = []
    for sid, new in zip(ids, fresh, strict=True):
        carried = live.meta.cv.get(sid)
        if not new and carried is None:
            return Plan(None, "live version lacks a cross-validated prediction")
        cv.append(None if new else (carried[0], float(carried[1]),
                                    own_probability(carried, live.meta.trained.get(sid))))
    return Plan(WarmStart(live.head, search.C, search.folds, cv),
                f"{changed} of {search.samples} samples changed since the search", search,
                changed)


def own_probability(cv: list, annotation: str | None) -> float:
    """A stored cross-validated entry's probability of the sample's own label: stored third
    since suspects were found; before, known only where the prediction was that label."""
    if len(cv) > 2:
        return float("nan") if cv[2] is None else float(cv[2])
    return float(cv[1]) if cv[0] == annotation else float("nan")


def record(p: Plan, C: float, folds: int, samples: int) -> Search:
    """The search record the new version carries: its own search's, or (warm) the live
    version's with the changes counted."""
    if p.warm is None:
        return Search(C, folds, samples, 0)
    return replace(p.searched, changed=p.changed)
