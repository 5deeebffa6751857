"""Use cases: the review queue, the capture buffer as a reviewer works through it (list,
dismiss). Annotating an item is the ordinary sample annotation (`usecases.samples`)."""

from __future__ import annotations

from labelloop.capture.strategies import STRATEGIES
from labelloop.container import Deps
from labelloop.domain import SampleItem
from labelloop.errors import BadRequest, Conflict
from labelloop.ids import bare
from labelloop.usecases.common import owned_function
from labelloop.usecases.suspects import SUSPECT


def review_queue(d: Deps, client: str, function_id: str, strategy: str | None,
                 limit: int) -> list[SampleItem]:
    """Buffered items: one strategy's, most informative first; or all strategies' merged
    (`interleave`)."""
    fn = owned_function(d, client, function_id)
    if strategy is not None and strategy not in STRATEGIES:
        raise BadRequest(f"strategy: unknown {strategy!r} (known: "
                         f"{', '.join([*STRATEGIES, SUSPECT])})")
    if strategy is not None:
        return d.ledger.page(fn.id, strategy, limit)
    budgets = fn.capture_policy.budgets()
    return interleave({b.name: d.ledger.page(fn.id, b.name, limit) for b in budgets},
                      {b.name: b.quota for b in budgets}, limit)


def interleave(queues: dict[str, list[SampleItem]], quotas: dict[str, int],
               limit: int) -> list[SampleItem]:
    """The strategies' queues merged in proportion to their quotas, each in its own order:
    priorities of different strategies mean different things, so they are not compared.
    At every step the strategy furthest behind its share (the fewest items given per quota
    slot, counting the next one half) gives its next item; ties go to registry order. A
    strategy whose quota is now 0 but still holds items counts as one slot."""
    given = dict.fromkeys(queues, 0)
    out: list[SampleItem] = []
    while len(out) < limit:
        left = [s for s, q in queues.items() if given[s] < len(q)]
        if not left:
            break
        s = min(left, key=lambda s: (given[s] + 0.5) / max(quotas.get(s, 0), 1))
        out.append(queues[s][given[s]])
        given[s] += 1
    return out


def dismiss(d: Deps, client: str, function_id: str, sample_id: str) -> None:
    """Drop a buffered item without annotating it: its slot is freed, and the same text is
    not captured again."""
    fn = owned_function(d, client, function_id)
    sample = d.samples.get(fn.id, bare(sample_id, "sample"))
    if sample.buffer is None:
        raise Conflict(f"sample {sample_id!r} is not in the capture buffer")
    d.samples.delete(sample, keep_claim=True)
    d.captures.invalidate(fn.id, left=sample.id)
