"""Use case: the work after the response of several held invokes, done at once
(`labelloop/held_invokes.py` says when, and what holding trades).

Their records in BatchWriteItem calls (a failure raises, and the container holds them all
again); then the captures of each live version's consecutive invokes, decided in order as one
by one would and committed in one transaction (`capture_many`); then their drift counts.
A failed capture or count is logged and costs only itself, as after a single invoke.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from labelloop.container import Deps
from labelloop.domain import InvokeItem
from labelloop.serving import LiveModel, Prediction, View
from labelloop.usecases import drift
from labelloop.usecases.capture import Offer, capture_many, count_captures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldInvoke:
    view: View
    model: LiveModel
    prediction: Prediction
    record: InvokeItem | None  # None: the function stores no invokes
    offer: Offer | None  # None: not offered to capture
    embedding: np.ndarray | None  # its row, to count for drift (None: not counted)


def write(d: Deps, held: list[HeldInvoke]) -> None:
    records = [h.record for h in held if h.record is not None]
    if records:
        d.invokes.put_many(records)
    offered = [h for h in held if h.offer is not None]
    for (fid, _), run in groupby(offered, key=lambda h: (h.view.function.id, h.model.version)):
        run = list(run)
        try:
            taken = capture_many(d, run[0].view, run[0].model, [h.offer for h in run])
        except Exception:
            log.exception("capture of %d held invokes failed", len(run))
            continue
        count_captures(fid, taken)
    for h in held:
        if h.embedding is not None:
            try:
                drift.observe(d, h.view, h.model, h.prediction, h.embedding)
            except Exception:
                log.exception("drift count of a held invoke failed")
