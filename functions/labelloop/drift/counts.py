"""What a stretch of invokes looked like to the live version: how many, the labels predicted,
their confidence in ten bins, and how many were novel (no training sample within a cosine).
Summed from the container's invokes, stored flat (`to_flat`), added up on read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

BINS = 10  # confidence bins of 0.1
LABEL = "l_"  # a flat label count's prefix (label ids are alphanumeric)


@dataclass
class DriftCounts:
    invokes: int = 0
    labels: Counter = field(default_factory=Counter)
    confidence: list[int] = field(default_factory=lambda: [0] * BINS)
    novel: int = 0

    def add(self, label_id: str, confidence: float, novel: bool) -> None:
        self.invokes += 1
        self.labels[label_id] += 1
        self.confidence[min(int(confidence * BINS), BINS - 1)] += 1
        self.novel += novel

    def merge(self, other: DriftCounts) -> DriftCounts:
        return DriftCounts(self.invokes + other.invokes, self.labels + other.labels,
                           [a + b for a, b in zip(self.confidence, other.confidence,
                                                  strict=True)],
                           self.novel + other.novel)

    @property
    def novel_share(self) -> float | None:
        return self.novel / self.invokes if self.invokes else None

    def to_flat(self) -> dict[str, int]:
        """One number per attribute (what DynamoDB's ADD can sum in place)."""
        return {"n": self.invokes, "novel": self.novel,
                **{f"c{i}": v for i, v in enumerate(self.confidence) if v},
                **{LABEL + k: v for k, v in self.labels.items()}}

    @classmethod
    def from_flat(cls, flat: dict) -> DriftCounts:
        return cls(int(flat.get("n", 0)),
                   Counter({k[len(LABEL):]: int(v) for k, v in flat.items()
                            if k.startswith(LABEL)}),
                   [int(flat.get(f"c{i}", 0)) for i in range(BINS)], int(flat.get("novel", 0)))
