"""How much each unreviewed suspect weighs in training, from what reviewers found in the suspect
queue so far.

Reviewers work through the queue from its top; most of it waits. When their answers show the
queue is right (they relabel or remove what it shows), the suspects nobody has reached yet are
probably mislabelled too, and they are trained lighter until someone reviews them: a suspect
weighs `1 - share_fixed * margin` (at least `MIN_WEIGHT`), where `share_fixed` is the share of
reviewed suspects that were fixed and `margin` the suspect's own doubt (p(predicted) -
p(annotated), `Suspect.margin`). A queue whose suspects reviewers keep changes nothing: its
share is near 0. Before `min_reviewed` answers (the training setting
`LABELLOOP_SUSPECTS_MIN_REVIEWED`, 20) nothing changes either.

Measured by scripts/eval_mislabels.py (BANKING77 with 5 % of its labels flipped, 16 seeds): a
reviewer relabels the flips among the queue's first 100 and keeps the rest; the retrain wins
back 53 % of what the noise cost with the other ~390 suspects trained lighter like this, 20 %
without. (An offline probe on the embeddings alone: training every suspect of the *clean* labels
lighter, as if the queue had been right, cost 0.1 point; so a wrong share costs little.)

Pure: the caller gives the live version's suspects and each sample's current state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from labelloop.ml.suspects import Suspect

MIN_WEIGHT = 0.1


@dataclass(frozen=True)
class Reviews:
    """What reviewers did with suspects: `fixed` counts every version's (relabelled, or
    annotation removed), `kept` the samples whose label a reviewer kept (the mark stays while
    the label does, so both count every version's reviews)."""

    fixed: int = 0
    kept: int = 0
    min_reviewed: int = 20

    @property
    def reviewed(self) -> int:
        return self.fixed + self.kept

    @property
    def share_fixed(self) -> float | None:
        """None until `min_reviewed` suspects have been reviewed."""
        return self.fixed / self.reviewed if self.reviewed >= self.min_reviewed else None


@dataclass(frozen=True)
class SampleNow:
    """A sample as it is now: its annotation (None: removed or deleted) and the label a
    reviewer kept (`SampleItem.kept`)."""

    annotation: str | None
    kept: str | None = None


def reviews(live_suspects: Sequence[Suspect], now: Mapping[str, SampleNow],
            labels: set[str], fixed_before: int, min_reviewed: int) -> Reviews:
    """`now`: every sample trained on now. `fixed_before`: the fixes the live version counted
    (`ModelMeta.suspects_fixed`); this adds the live version's suspects relabelled or stripped
    of their label since. A suspect whose label was deleted is nobody's answer: not counted."""
    fixed = sum(1 for s in live_suspects if s.annotated in labels
                and now.get(s.sample_id, SampleNow(None)).annotation != s.annotated)
    kept = sum(1 for x in now.values() if x.kept is not None and x.kept == x.annotation)
    return Reviews(fixed_before + fixed, kept, min_reviewed)


def weights(live_suspects: Sequence[Suspect], now: Mapping[str, SampleNow],
            found: Reviews) -> dict[str, float]:
    """Sample id → training weight, for the live version's suspects still unreviewed (the
    label it doubted, not kept); every other sample weighs 1."""
    share = found.share_fixed
    if not share:
        return {}
    out = {}
    for s in live_suspects:
        sample = now.get(s.sample_id)
        if sample is not None and sample.annotation == s.annotated and sample.kept != s.annotated:
            out[s.sample_id] = max(MIN_WEIGHT, 1.0 - share * s.margin)
    return out
