"""Issue 21's capture rules, pure: rare_class from the label mix of recent predictions, the
spread rules of a buffer (near-twins, a cap per predicted label) inside `decide`, a rival's
replacement in the cached buffer state, and the review queue's merge by quota shares."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.capture import spread
from labelloop.capture.decide import Buffered, BufferState, Slot, decide
from labelloop.capture.mix import PredictionMix
from labelloop.capture.policy import Budget
from labelloop.capture.strategies import STRATEGIES, Candidate
from labelloop.usecases.review import interleave


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


# -- rare_class by recent predictions ---------------------------------------------------------

def test_rare_class_takes_a_seldom_predicted_label_though_every_label_has_the_same_samples():
    rare = STRATEGIES["rare_class"]()  # seldom: under half an even share
    rng = np.random.default_rng()
    # 10 labels, 2 samples each: by samples nothing is rare (the old rule's blind spot).
    even = dict(label_count=2, rarity_rank=0, label_total=10, top_count=2)
    assert rare.priority(Candidate("a", 0.9, 0.5, **even), rng) is None
    assert rare.priority(Candidate("a", 0.9, 0.5, **even, prediction_share=0.1), rng) is None
    seldom = rare.priority(Candidate("a", 0.9, 0.5, **even, prediction_share=0.01), rng)
    rarer = rare.priority(Candidate("a", 0.9, 0.5, **even, prediction_share=0.001), rng)
    assert rarer > seldom > 0
    off = STRATEGIES["rare_class"](seldom=0.0)
    assert off.priority(Candidate("a", 0.9, 0.5, **even, prediction_share=0.0), rng) is None


def test_the_mix_tells_shares_only_after_twice_as_many_offers_as_labels_and_forgets_old_ones():
    mix = PredictionMix(half_life=100)
    for _ in range(7):
        mix.observe("a")
    assert mix.share("a", 4) is None  # 7 < 2 x 4
    mix.observe("b")
    assert mix.share("a", 4) == pytest.approx(7 / 8, rel=0.05)
    assert mix.share("c", 4) == 0.0
    for _ in range(1000):  # ten half-lives of "b": "a" all but forgotten
        mix.observe("b")
    assert mix.share("a", 4) < 0.01 and mix.share("b", 4) > 0.99
    for _ in range(50_000):  # past the rescale: shares still add up
        mix.observe("c")
    assert mix.share("c", 4) + mix.share("b", 4) + mix.share("a", 4) == pytest.approx(1.0)


# -- the spread rules ---------------------------------------------------------------------------

def buffered(sid: str, priority: float, label: str, vec) -> Buffered:
    return Buffered(Slot(sid, priority, f"h-{sid}"), label, unit(vec))


ITEMS = [buffered("s1", 0.6, "a", [1, 0, 0, 0]), buffered("s2", 0.7, "a", [0, 1, 0, 0]),
         buffered("s3", 0.2, "b", [0, 0, 1, 0])]
STACKED = np.stack([i.embedding for i in ITEMS])


def test_a_near_twin_must_beat_the_item_it_resembles_and_a_full_label_its_least_informative():
    twin = unit([1, 0.1, 0, 0])  # cosine 0.995 with s1
    assert spread.rival(ITEMS, STACKED, twin, "b", 0.9, cap=10) == ITEMS[0].slot
    assert spread.rival(ITEMS, STACKED, twin, "b", 0.999, cap=10) is None  # not that similar
    fresh = unit([0, 0, 0, 1])
    assert spread.rival(ITEMS, STACKED, fresh, "a", 0.9, cap=2) == ITEMS[0].slot  # a's lowest
    assert spread.rival(ITEMS, STACKED, fresh, "a", 0.9, cap=3) is None
    assert spread.rival(ITEMS, STACKED, fresh, "b", 0.9, cap=2) is None
    assert spread.rival([], np.zeros((0, 0), np.float32), fresh, "a", 0.9, cap=1) is None


def test_the_cap_is_a_share_of_the_quota_or_twice_an_even_share():
    assert spread.label_cap(400, 0.1, 77) == 40
    assert spread.label_cap(400, 0.1, 5) == 160  # 2 / 5 of the slots
    assert spread.label_cap(400, 0.1, 2) == 400  # two labels: no cap
    assert spread.label_cap(3, 0.1, 100) == 1


def test_decide_replaces_the_rival_only_when_more_informative_and_spares_the_random_strategy():
    u = Budget(STRATEGIES["uncertainty"](threshold=0.0), 10)
    rng = np.random.default_rng()
    c = Candidate("a", 0.6, 0.2, 3, 1)  # uncertainty 0.8
    weak, strong = Slot("w", 0.5, "hw"), Slot("s", 0.9, "hs")
    room = {"uncertainty": BufferState(2)}
    assert decide([u], c, room, rng, lambda s: weak).replaces == weak  # though slots are free
    assert decide([u], c, room, rng, lambda s: strong) is None
    assert decide([u], c, room, rng, lambda s: None).replaces is None  # a free slot
    # Losing to its rival, a candidate goes on to the next strategy; random has no rival.
    r = Budget(STRATEGIES["random"](rate=1.0), 10)
    asked = []
    take = decide([u, r], c, room, rng, lambda s: asked.append(s) or strong)
    assert take.strategy == "random" and take.replaces is None and asked == ["uncertainty"]


def test_a_rivals_replacement_keeps_the_known_lowest_items_right():
    low, mid, high = Slot("l", 0.1, "hl"), Slot("m", 0.5, "hm"), Slot("h", 0.9, "hh")
    full = BufferState(3, low, (mid, high))
    after = full.replaced(mid, Slot("n", 0.7, "hn"))  # a rival above the lowest
    assert (after.lowest, after.above) == (low, (Slot("n", 0.7, "hn"), high))
    after = full.replaced(low, Slot("n", 0.3, "hn"))  # the lowest, as before
    assert (after.lowest, after.above) == (Slot("n", 0.3, "hn"), (mid, high))
    assert BufferState(2).replaced(mid, Slot("n", 0.3, "hn")) == BufferState(2)  # not full
    assert BufferState(3, low).replaced(low, Slot("n", 0.3, "hn")) is None  # nothing known


# -- the merged review queue ----------------------------------------------------------------

def test_the_merged_queue_interleaves_strategies_by_quota_in_their_own_order():
    queues = {"random": [f"r{i}" for i in range(5)], "uncertainty": [f"u{i}" for i in range(50)],
              "rare_class": [f"c{i}" for i in range(2)]}
    quotas = {"random": 50, "uncertainty": 400, "rare_class": 50}
    out = interleave(queues, quotas, 20)
    assert len(out) == 20
    assert [x for x in out if x[0] == "u"] == [f"u{i}" for i in range(16)]  # its own order
    assert out.count("r0") == 1 and {"r0", "r1", "c0", "c1"} <= set(out)
    # Shares: 1 : 8 : 1 while each has items; the first ten hold one of random and rare_class.
    assert sorted(x[0] for x in out[:10]) == ["c"] + ["r"] + ["u"] * 8
    # A strategy whose quota is 0 now still shows its leftovers; a short queue ends early.
    assert interleave({"a": ["a0"], "b": ["b0", "b1"]}, {"a": 0, "b": 5}, 9) == ["b0", "b1", "a0"]


# -- the cached buffered items ----------------------------------------------------------------

def test_an_item_leaving_the_buffer_leaves_the_cached_view_without_a_full_read():
    import hashlib

    from fakes import MemoryLedger, MemorySamples

    from labelloop.capture.policy import CapturePolicy
    from labelloop.capture.state import CaptureCache
    from labelloop.domain import SampleItem

    class CountingLedger(MemoryLedger):
        reads = 0

        def buffered(self, fid, strategy):
            CountingLedger.reads += 1
            return super().buffered(fid, strategy)

    samples = MemorySamples()
    ledger = CountingLedger(samples)
    for sid, vec in (("s1", [1, 0, 0, 0]), ("s2", [0, 1, 0, 0])):
        ledger.capture(SampleItem(
            id=sid, function_id="f", data=sid, created_at=1.0,
            data_hash=hashlib.sha256(sid.encode()).hexdigest(), embedding=unit(vec).tobytes(),
            tokens=b"", buffer="uncertainty", capture_reason="uncertainty", priority=0.5,
            predicted_label_id="a"), 10, None)
    cache = CaptureCache(samples, ledger, None, ttl=60)
    st = cache.state("f", CapturePolicy(), None)
    twin = unit([1, 0.05, 0, 0])
    assert cache.rival("f", st, "uncertainty", twin, "a").sample_id == "s1"
    reads = CountingLedger.reads
    cache.invalidate("f", left="s1")  # annotated: only it leaves the view
    st = cache.state("f", CapturePolicy(), None)
    assert cache.rival("f", st, "uncertainty", twin, "a") is None
    assert cache.rival("f", st, "uncertainty", unit([0, 1, 0.05, 0]), "a").sample_id == "s2"
    assert CountingLedger.reads == reads
    cache.invalidate("f")  # a lost race: everything is read again
    cache.rival("f", st, "uncertainty", twin, "a")
    assert CountingLedger.reads > reads
