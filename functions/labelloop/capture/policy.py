"""A function's capture policy: each strategy's settings and quota (how many of the review
buffer's slots its captures may hold), and the near-duplicate cosine.

Stored on the function as the overrides given (`FunctionItem.capture`, docs/storage.md) and
read typed through `FunctionItem.capture_policy`. One settings dict per strategy holds both its
scorer's settings and its quota; the quota is split off here, so that a strategy only scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labelloop.capture.strategies import STRATEGIES, Strategy

# Chosen with scripts/eval_capture.py, with the strategies' defaults: among the mixes tried,
# the one that met the most targets on BANKING77 and CLINC150 (see README "Capture and
# review"); with a decision policy, near_threshold (50) added 3 to 23 points of coverage at the
# target, confused_pair gained nothing clear (0: off until a function turns it on).
DEFAULT_QUOTAS: dict[str, int] = {
    "random": 50,
    "near_threshold": 50,
    "confused_pair": 0,
    "uncertainty": 400,
    "rare_class": 50,
}


class _Quota(BaseModel):
    quota: int = Field(ge=0, le=10_000)


@dataclass(frozen=True)
class Budget:
    """A configured strategy and its quota."""

    strategy: Strategy
    quota: int

    @property
    def name(self) -> str:
        return self.strategy.name

    def settings(self) -> dict[str, Any]:
        """As a function's policy gives them: the quota among the scorer's settings."""
        return {"quota": self.quota, **self.strategy.model_dump()}


def _split(name: str, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A strategy's settings as given: its quota's, its scorer's."""
    return ({"quota": settings.get("quota", DEFAULT_QUOTAS[name])},
            {k: v for k, v in settings.items() if k != "quota"})


class CapturePolicy(BaseModel):
    """Per-strategy overrides of the defaults, the cosine above which an invoke counts as
    a near-duplicate of something buffered or trained on, and the spread rules' settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    near_duplicate_cosine: float = Field(0.97, gt=0.0, le=1.0)
    # The spread rules (`capture.spread`): the cosine from which a candidate counts as
    # similar to a buffered item (1: off), and the share of a strategy's slots one predicted
    # label may hold (1: off).
    spread_cosine: float = Field(0.9, gt=0.0, le=1.0)
    label_cap: float = Field(0.1, gt=0.0, le=1.0)
    # While drift is flagged (`usecases.drift`), `random`'s rate is multiplied by this (at most
    # 1): more unbiased samples of the new traffic. 1: off.
    drift_random_factor: float = Field(2.0, ge=1.0, le=100.0)

    @field_validator("strategies")
    @classmethod
    def _known(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, settings in v.items():
            if name not in STRATEGIES:
                raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
            problems = []
            quota, scorer = _split(name, settings)
            for model, given in ((_Quota, quota), (STRATEGIES[name], scorer)):
                try:
                    model.model_validate(given)
                except ValidationError as err:
                    problems += [f"{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in err.errors()]
            if problems:
                raise ValueError("; ".join(problems))
        return v

    def drifted(self) -> CapturePolicy:
        """The policy while drift is flagged: `random`'s rate times `drift_random_factor`."""
        if self.drift_random_factor == 1.0:
            return self
        random = dict(self.strategies.get("random", {}))
        rate = STRATEGIES["random"].model_validate(
            {k: v for k, v in random.items() if k != "quota"}).rate
        random["rate"] = min(1.0, rate * self.drift_random_factor)
        return self.model_copy(update={"strategies": {**self.strategies, "random": random}})

    def budgets(self) -> list[Budget]:
        """Every registered strategy, configured, with its quota, in registry order."""
        out = []
        for name, cls in STRATEGIES.items():
            quota, scorer = _split(name, self.strategies.get(name, {}))
            out.append(Budget(cls.model_validate(scorer), _Quota.model_validate(quota).quota))
        return out
