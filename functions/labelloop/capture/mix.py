"""The label mix of a function's recent predictions, as one container sees them: what the
rare_class strategy reads as "seldom predicted". Each offer counts with a weight that grows
by a factor per offer, so older predictions fade with a half-life of `half_life` offers and
nothing is rescaled per offer. Another container sees its own share of the traffic: a sample
of the same mix."""

from __future__ import annotations

HALF_LIFE = 2000
# Weights are rescaled past this, long before floats lose precision.
_RESCALE_AT = 1e12


class PredictionMix:
    def __init__(self, half_life: int = HALF_LIFE):
        self._growth = 2.0 ** (1.0 / half_life)
        self._weight = 1.0
        self._counts: dict[str, float] = {}
        self._total = 0.0
        self.seen = 0

    def observe(self, label_id: str) -> None:
        self._counts[label_id] = self._counts.get(label_id, 0.0) + self._weight
        self._total += self._weight
        self.seen += 1
        self._weight *= self._growth
        if self._weight > _RESCALE_AT:
            scale = 1.0 / self._weight
            self._counts = {k: v * scale for k, v in self._counts.items()}
            self._total *= scale
            self._weight = 1.0

    def share(self, label_id: str, labels: int) -> float | None:
        """The label's recent share, or None until twice as many offers as labels were seen
        (every label could have come up twice)."""
        if self.seen < 2 * labels or self._total <= 0:
            return None
        return self._counts.get(label_id, 0.0) / self._total
