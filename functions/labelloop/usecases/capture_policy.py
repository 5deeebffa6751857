"""Use cases: a function's capture policy (`capture.policy.CapturePolicy`), read with the slots
each strategy holds, and changed setting by setting."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from labelloop.capture.policy import CapturePolicy
from labelloop.container import Deps
from labelloop.errors import BadRequest
from labelloop.usecases.common import owned_function


@dataclass(frozen=True)
class BufferUsage:
    strategy: str
    used: int
    settings: dict


def get_policy(d: Deps, client: str, function_id: str) -> tuple[CapturePolicy,
                                                                list[BufferUsage]]:
    fn = owned_function(d, client, function_id)
    policy = fn.capture_policy
    used = d.ledger.counters(fn.id)
    return policy, [BufferUsage(b.name, used.get(b.name, 0), b.settings())
                    for b in policy.budgets()]


# The policy's settings beside the strategies', and their names in the API.
SCALARS = {"near_duplicate_cosine": "nearDuplicateCosine", "spread_cosine": "spreadCosine",
           "label_cap": "labelCap", "drift_random_factor": "driftRandomFactor"}


def set_policy(d: Deps, client: str, function_id: str, strategies: dict[str, dict],
               **scalars: float | None) -> CapturePolicy:
    """Change some settings (`scalars`: of `SCALARS`, None keeps one); the rest keep their
    values."""
    fn = owned_function(d, client, function_id)
    old = fn.capture_policy
    merged = {name: {**old.strategies.get(name, {}), **settings}
              for name, settings in {**old.strategies, **strategies}.items()}
    try:
        policy = CapturePolicy(strategies=merged, **{
            k: getattr(old, k) if scalars.get(k) is None else scalars[k] for k in SCALARS})
    except ValidationError as err:
        raise BadRequest("; ".join(_problem(e) for e in err.errors())) from err
    d.functions.update(fn.id, capture=policy.model_dump())
    d.serving.invalidate(fn.id)
    d.captures.invalidate(fn.id)
    return policy


def _problem(e: dict) -> str:
    field = next((SCALARS[k] for k in SCALARS if k in e.get("loc", ())), "strategies")
    return f"{field}: {e.get('msg', 'invalid').removeprefix('Value error, ')}"
