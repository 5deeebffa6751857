"""Use case: re-scoring the capture buffer after a retrain is promoted, so that each strategy's
buffer holds what is informative under the new model (the uncertainty buffer: what is
uncertain now) and a full one replaces the right item first."""

from __future__ import annotations

from labelloop.container import Deps
from labelloop.domain import features_of
from labelloop.serving import LiveModel, predict


def rescore(d: Deps, fid: str, model: LiveModel, labels: dict) -> int:
    """Every buffered item's priority under `model`; returns how many were re-scored."""
    fn = d.functions.get(fid)
    st = d.captures.state(fid, fn.capture_policy, model)
    decisions = d.serving.decisions(fid, fn.thresholds, model, labels)
    n = 0
    for b in st.budgets:
        items = list(d.ledger.items(fid, b.name))
        if not items:
            continue
        for item, p in zip(items, predict(model, labels, features_of(items)), strict=True):
            d.ledger.rescore(item, b.strategy.rescore(st.candidate(p, decisions),
                                                      item.priority or 0.0))
            n += 1
    d.captures.invalidate(fid)
    return n
