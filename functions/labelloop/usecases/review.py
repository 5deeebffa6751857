"""Use cases: the review queue, the capture buffer as a reviewer works through it (list,
dismiss). Annotating an item is the ordinary sample annotation (`usecases.samples`)."""

from __future__ import annotations

from labelloop.capture.strategies import STRATEGIES
from labelloop.container import Deps
from labelloop.domain import SampleItem
from labelloop.errors import BadRequest, Conflict
from labelloop.ids import bare
from labelloop.usecases.common import owned_function


def review_queue(d: Deps, client: str, function_id: str, strategy: str | None,
                 limit: int) -> list[SampleItem]:
    """Buffered items, most informative first (per strategy; merged by priority)."""
    fn = owned_function(d, client, function_id)
    if strategy is not None and strategy not in STRATEGIES:
        raise BadRequest(f"strategy: unknown {strategy!r} (known: {', '.join(STRATEGIES)})")
    names = [strategy] if strategy else list(STRATEGIES)
    items = [i for name in names for i in d.ledger.page(fn.id, name, limit)]
    return sorted(items, key=lambda i: -(i.priority or 0.0))[:limit]


def dismiss(d: Deps, client: str, function_id: str, sample_id: str) -> None:
    """Drop a buffered item without annotating it: its slot is freed, and the same text is
    not captured again."""
    fn = owned_function(d, client, function_id)
    sample = d.samples.get(fn.id, bare(sample_id, "sample"))
    if sample.buffer is None:
        raise Conflict(f"sample {sample_id!r} is not in the capture buffer")
    d.samples.delete(sample, keep_claim=True)
    d.captures.invalidate(fn.id)
