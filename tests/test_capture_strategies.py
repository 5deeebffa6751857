"""Capture strategies and the pure decision: contract tests over every registered strategy,
then each strategy's own rule, then fill / replace / near-duplicate."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from labelloop.capture.decide import BufferState, Slot, decide, near_duplicate, rarity
from labelloop.capture.policy import DEFAULT_QUOTAS, Budget, CapturePolicy
from labelloop.capture.state import CaptureCache
from labelloop.capture.strategies import STRATEGIES, Candidate


def candidates(n: int, seed: int = 0) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        conf = float(rng.uniform(0.2, 1.0))
        margin = float(rng.uniform(0, conf))
        count = int(rng.integers(0, 30))
        out.append(Candidate(f"l{rng.integers(5)}", conf, margin, count,
                             int(rng.integers(20)), 20, 30,
                             accept_threshold=float(rng.uniform(0.5, 1.0)),
                             pair_rank=int(rng.integers(10)) if rng.random() < 0.5 else None))
    return out


# -- contract: every strategy ---------------------------------------------------------------

@pytest.fixture(params=list(STRATEGIES))
def strategy(request):
    return STRATEGIES[request.param]()


def test_defaults_need_no_configuration_and_unknown_settings_are_rejected(strategy):
    assert DEFAULT_QUOTAS[strategy.name] >= 0  # 0: off until a function turns it on
    with pytest.raises(ValidationError):
        type(strategy)(no_such_setting=1)
    with pytest.raises(ValidationError, match=rf"{strategy.name}\.quota"):
        CapturePolicy(strategies={strategy.name: {"quota": -1}})
    with pytest.raises(ValidationError):  # the quota is the policy's, not the scorer's
        type(strategy)(quota=1)


def test_priorities_are_in_unit_interval_or_declined(strategy):
    rng = np.random.default_rng(1)
    taken = [strategy.priority(c, rng) for c in candidates(500)]
    values = [p for p in taken if p is not None]
    assert values, "a default strategy takes some of 500 varied predictions"
    assert all(0.0 <= p <= 1.0 for p in values)


def test_the_same_generator_seed_gives_the_same_decisions(strategy):
    cs = candidates(200)
    a = [strategy.priority(c, np.random.default_rng(7)) for c in cs]
    b = [strategy.priority(c, np.random.default_rng(7)) for c in cs]
    assert a == b


def test_rescore_never_declines_and_stays_in_range(strategy):
    for c in candidates(200):
        p = strategy.rescore(c, 0.42)
        assert p is not None and 0.0 <= p <= 1.0


def test_a_zero_quota_takes_nothing(strategy):
    off = Budget(strategy, 0)
    rng = np.random.default_rng(0)
    assert all(decide([off], c, {}, rng) is None for c in candidates(200))


# -- each strategy's rule -------------------------------------------------------------------

def test_uncertainty_scores_by_margin_or_least_confidence():
    u = STRATEGIES["uncertainty"](threshold=0.0)
    sure_top2_close = Candidate("a", 0.5, 0.05, 10, 3)
    assert u.priority(sure_top2_close, np.random.default_rng()) == pytest.approx(0.95)
    lc = STRATEGIES["uncertainty"](threshold=0.0, measure="least_confidence")
    assert lc.priority(sure_top2_close, np.random.default_rng()) == pytest.approx(0.5)
    strict = STRATEGIES["uncertainty"](threshold=0.9)
    assert strict.priority(Candidate("a", 0.9, 0.8, 10, 3), np.random.default_rng()) is None


def test_random_takes_about_its_rate_whatever_the_prediction():
    r = STRATEGIES["random"](rate=0.25)
    rng = np.random.default_rng(3)
    sure = Candidate("a", 0.99, 0.98, 10, 3)
    unsure = Candidate("a", 0.4, 0.01, 10, 3)
    for c in (sure, unsure):
        taken = sum(r.priority(c, rng) is not None for _ in range(4000))
        assert 0.22 < taken / 4000 < 0.28


def test_rare_class_takes_only_the_rarest_labels_rarer_first():
    rare = STRATEGIES["rare_class"](fraction=0.1)  # 2 of 20 labels
    rng = np.random.default_rng()
    assert rare.priority(Candidate("a", 0.9, 0.5, 30, 2, 20, 40), rng) is None
    rarest = rare.priority(Candidate("a", 0.9, 0.5, 1, 0, 20, 40), rng)
    second = rare.priority(Candidate("b", 0.9, 0.5, 4, 1, 20, 40), rng)
    assert rarest > second > 0
    # Every label equally covered: none is rare.
    assert rare.priority(Candidate("a", 0.9, 0.5, 6, 0, 20, 6), rng) is None


def test_near_threshold_takes_a_band_under_the_accept_threshold_closer_first():
    near = STRATEGIES["near_threshold"](band=0.1)
    rng = np.random.default_rng()

    def at(conf, threshold=0.9):
        return near.priority(Candidate("a", conf, 0.5, 10, 3, accept_threshold=threshold), rng)

    assert at(0.9) is None and at(0.95) is None  # accepted already
    assert at(0.79) is None  # too far under
    assert at(0.8) == pytest.approx(0.0) and at(0.85) == pytest.approx(0.5)
    assert at(0.899) > at(0.85) > at(0.81)
    assert at(0.85, threshold=None) is None  # no policy, or a target it cannot show


def test_confused_pair_takes_uncertain_predictions_between_the_most_confused_labels():
    pair = STRATEGIES["confused_pair"](pairs=3, threshold=0.3)
    rng = np.random.default_rng()

    def of(rank, margin):
        return pair.priority(Candidate("a", 0.6, margin, 10, 3,
                                       pair_rank=rank), rng)

    assert of(0, 0.2) == pytest.approx(0.8) and of(2, 0.5) == pytest.approx(0.5)
    assert of(3, 0.2) is None  # not among the 3 most confused
    assert of(None, 0.2) is None  # its top two are not a confused pair
    assert of(0, 0.8) is None  # sure enough


def test_rarity_counts_labels_with_fewer_samples():
    counts = {"a": 5, "b": 1, "c": 1, "d": 9}
    assert rarity(counts, "b") == {"label_count": 1, "rarity_rank": 0, "label_total": 4,
                                   "top_count": 9}
    assert rarity(counts, "a")["rarity_rank"] == 2
    assert rarity(counts, "new")["label_count"] == 0


# -- decision -------------------------------------------------------------------------------

def test_decide_fills_free_slots_then_replaces_only_a_less_informative_item():
    u = Budget(STRATEGIES["uncertainty"](threshold=0.0), 2)
    rng = np.random.default_rng()
    c = Candidate("a", 0.6, 0.2, 3, 1)  # uncertainty 0.8
    take = decide([u], c, {"uncertainty": BufferState(1)}, rng)
    assert take.strategy == "uncertainty" and take.replaces is None and take.quota == 2
    low = Slot("s1", 0.5, "h1")
    take = decide([u], c, {"uncertainty": BufferState(2, low)}, rng)
    assert take.replaces == low and take.priority == pytest.approx(0.8)
    high = Slot("s2", 0.9, "h2")
    assert decide([u], c, {"uncertainty": BufferState(2, high)}, rng) is None


def test_an_invoke_goes_to_the_first_strategy_that_takes_it():
    policy = CapturePolicy(strategies={"random": {"rate": 1.0}, "uncertainty": {"threshold": 0}})
    take = decide(policy.budgets(), Candidate("a", 0.5, 0.1, 3, 1), {}, np.random.default_rng())
    assert take.strategy == "random"
    full = {"random": BufferState(100, Slot("x", 1.0, "h"))}  # nothing beats key 1.0
    take = decide(policy.budgets(), Candidate("a", 0.5, 0.1, 3, 1), full,
                  np.random.default_rng())
    assert take.strategy == "uncertainty"


def test_policy_overrides_are_validated_and_name_the_field():
    assert [b.name for b in CapturePolicy().budgets()] == list(STRATEGIES)
    assert {b.name: b.quota for b in CapturePolicy().budgets()} == DEFAULT_QUOTAS
    with pytest.raises(ValidationError, match=r"uncertainty\.quota"):
        CapturePolicy(strategies={"uncertainty": {"quota": -5}})
    with pytest.raises(ValidationError, match="unknown strategy 'loudest'"):
        CapturePolicy(strategies={"loudest": {}})


def test_near_duplicate_by_cosine_against_every_known_set():
    rng = np.random.default_rng(0)
    known = rng.normal(size=(20, 8)).astype(np.float32)
    known /= np.linalg.norm(known, axis=1, keepdims=True)
    close = known[3] + 0.05 * rng.normal(size=8).astype(np.float32)
    close /= np.linalg.norm(close)
    far = -known.mean(axis=0)
    far /= np.linalg.norm(far)
    empty = np.zeros((0, 0), np.float32)
    assert near_duplicate(close, [empty, known.astype(np.float16)], 0.97)
    assert not near_duplicate(far, [known, empty], 0.97)
    assert not near_duplicate(close, [empty, empty], 0.5)


# -- an offer's draws -----------------------------------------------------------------------

def test_an_offers_draws_come_from_its_id_and_the_seed_at_the_random_strategys_rate():
    """One generator per offer: the same id draws the same (a batch's offer decided again one
    by one, whatever other threads drew), another id or another seed draws otherwise."""
    def cache(seed):
        return CaptureCache(None, None, None, ttl=0, seed=seed)

    assert cache(1).draws("s1").random() == cache(1).draws("s1").random()
    assert cache(1).draws("s1").random() != cache(1).draws("s2").random()
    assert cache(1).draws("s1").random() != cache(2).draws("s1").random()
    assert cache(None).draws("s1").random() == cache(None).draws("s1").random()
    r = STRATEGIES["random"](rate=0.25)
    c = Candidate("a", 0.99, 0.98, 10, 3)
    for seed in (None, 3):
        taken = sum(r.priority(c, cache(seed).draws(f"s{k:05d}")) is not None
                    for k in range(4000))
        assert 0.22 < taken / 4000 < 0.28
