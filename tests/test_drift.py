"""Drift: the counts, the bias-corrected PSI, the container's tracker, the stored counters, and
the whole path through invoke: a stream that switches to another domain's texts is flagged
within 500 invokes, a stationary one of 5,000 never is, and while flagged `random` samples
twice as often."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import ROOT

from labelloop.capture.policy import CapturePolicy
from labelloop.drift.counts import DriftCounts
from labelloop.drift.score import drift_score, psi
from labelloop.drift.tracker import DriftStatus, DriftTracker

SMOKE = ROOT / "scripts" / "data" / "smoke"


def test_counts_add_merge_and_round_trip_flat():
    a, b = DriftCounts(), DriftCounts()
    a.add("l1", 0.95, False)
    a.add("l2", 0.05, True)
    b.add("l1", 1.0, False)  # the top bin holds 1.0
    c = a.merge(b)
    assert (c.invokes, c.novel, c.labels["l1"], c.confidence[9], c.confidence[0]) == (
        3, 1, 2, 2, 1)
    assert DriftCounts.from_flat(c.to_flat()) == c
    assert c.novel_share == pytest.approx(1 / 3) and DriftCounts().novel_share is None


def test_psi_takes_off_what_sampling_alone_gives():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(77))
    raw, corrected = [], []
    for _ in range(30):
        ref, cur = rng.multinomial(1000, p), rng.multinomial(500, p)
        corrected.append(psi(ref, cur))
        k = np.count_nonzero(ref + cur)
        raw.append(corrected[-1] + (k - 1) * (1 / 500 + 1 / 1000))
    assert np.mean(raw) > 0.15  # most of the usual 0.25 threshold on noise alone
    assert np.mean(corrected) < 0.03 and max(corrected) < 0.25
    shifted = rng.multinomial(500, np.roll(p, 1))
    assert psi(rng.multinomial(1000, p), shifted) > 0.5
    assert psi([0, 0], [3, 4]) == 0.0  # nothing to compare with


def test_the_score_is_the_largest_signal():
    ref, cur = DriftCounts(), DriftCounts()
    for i in range(600):
        ref.add(f"l{i % 3}", 0.9, False)
        cur.add(f"l{i % 3}", 0.9, i % 2 == 0)  # half novel now
    s = drift_score(ref, cur)
    assert s.labels == s.confidence == 0.0 and s.novelty > 1 and s.score == s.novelty


def test_the_tracker_flushes_by_count_or_age_and_flags_one_version():
    t = DriftTracker()
    for i in range(99):
        assert t.observe("f", 1, "l", 0.5, False, 100, 60.0, now=i / 10) is None
    due = t.observe("f", 1, "l", 0.5, False, 100, 60.0, now=9.9)
    assert due.invokes == 100
    assert t.observe("f", 1, "l", 0.5, False, 100, 60.0, now=10.0) is None
    assert t.observe("f", 1, "l", 0.5, True, 100, 60.0, now=70.0).invokes == 2  # 60 s old
    t.observe("g", 2, "l", 0.5, False, 100, 60.0, now=0.0)
    mine = t.observe("g", 2, "l", 0.5, False, 2, 60.0, now=1.0)  # g's counts only
    assert (mine.invokes, mine.novel) == (2, 0)
    assert t.observe("g", 2, "l", 0.5, False, 2, 60.0, now=2.0) is None  # taken by that flush
    t.keep_reference("f", 1, (DriftCounts(), "DRIFT#00000001#k"))
    assert t.reference("f", 1)[1] == "DRIFT#00000001#k" and t.reference("f", 2) is None
    t.scored("f", DriftStatus(1, 0.9, True))
    assert t.flagged("f", 1) and not t.flagged("f", 2) and not t.flagged("g", 2)


def test_under_drift_random_samples_more_within_its_bounds():
    default = CapturePolicy()
    assert default.drifted().budgets()[0].strategy.rate == pytest.approx(0.1)
    busy = CapturePolicy(strategies={"random": {"rate": 0.7, "quota": 9}})
    assert busy.drifted().strategies["random"] == {"rate": 1.0, "quota": 9}
    off = CapturePolicy(drift_random_factor=1.0)
    assert off.drifted() is off


def test_stored_counters(aws):
    from labelloop.container import Deps

    log = Deps().drift
    now = time.time()

    def counts(n: int, novel: int = 0) -> DriftCounts:
        c = DriftCounts()
        for i in range(n):
            c.add("l1" if i % 2 else "l2", 0.75, i < novel)
        return c

    assert log.first("f", 1, 100) is None and log.reference("f", 1) is None
    keys = [log.append("f", 1, counts(60, novel=k), now + k) for k in range(4)]
    log.append("f", 2, counts(500), now)  # another version's
    total, until = log.first("f", 1, 100)
    assert total.invokes == 120 and until == keys[1]
    assert log.put_reference("f", 1, total, until, now) == (total, until)
    other = log.put_reference("f", 1, counts(5), keys[3], now)  # a second container: too late
    assert other == (total, until)
    recent = log.recent("f", 1, 100, after=until)
    assert recent.invokes == 120 and recent.novel == 2 + 3
    assert log.recent("f", 1, 121, after=until) is None
    day, = log.days("f", 14, now)
    assert day[1].invokes == 4 * 60 + 500 and day[1].labels["l1"] == 4 * 30 + 250


def _smoke(name: str) -> tuple[list[tuple[str, str]], list[str]]:
    data = json.loads((SMOKE / f"{name}.json").read_text())
    return [tuple(x) for x in data["train"]], [t for t, _ in data["train"] + data["test"]]


def test_a_switch_to_another_domain_is_flagged_within_500_invokes_a_steady_stream_never(
        api, monkeypatch):
    """A function trained on BANKING77 (the smoke subset: 12 labels); 5,000 invokes of its
    texts in random order (a stationary stream) flag nothing at any of their 50 flushes; then
    CLINC150's texts: flagged within 500 of them."""
    from test_api import make_function

    from labelloop.container import deps
    from labelloop.usecases import invoke

    train, banking = _smoke("banking77")
    _, clinc = _smoke("clinc150")
    labels = {y: None for _, y in train}
    fid = make_function(api, labels=labels, samples=train, storeInvokes=False)
    d = deps()
    rng = np.random.default_rng(0)
    scores = []

    def stream(texts: list[str], n: int) -> int | None:
        """Invoke n texts drawn from `texts`; the invoke count at which drift was flagged."""
        for k in range(n):
            invoke.invoke(d, "client-a", fid, texts[rng.integers(len(texts))], capture=False)
            if (k + 1) % d.settings.drift_flush_invokes == 0:
                status, body, _ = api.call("GET", f"/v1/functions/{fid}/drift")
                assert status == 200, body
                scores.append(body["score"])
                if body["flagged"]:
                    return k + 1
        return None

    assert stream(banking, 5000) is None
    assert scores[:14] == [None] * 14  # the reference is 1,000 invokes, the window 500
    assert all(s is not None and s < 0.25 for s in scores[14:]), scores
    steady = api.call("GET", f"/v1/functions/{fid}/drift")[1]
    assert steady["reference"]["invokes"] == 1000 and steady["recent"]["invokes"] >= 500
    assert sum(day["invokes"] for day in steady["days"]) == 5000
    fn = d.serving.live_view(fid.removeprefix("function_")).function
    assert not d.drift_tracker.flagged(fn.id, fn.live)

    flagged_at = stream(clinc, 500)
    assert flagged_at is not None and flagged_at <= 500, scores[-5:]
    body = api.call("GET", f"/v1/functions/{fid}/drift")[1]
    assert body["flagged"] and body["score"] >= 0.25
    assert body["signals"]["novelty"] > 0.25 or body["signals"]["labels"] > 0.25
    assert body["recent"]["novelShare"] > body["reference"]["novelShare"]
    # This container read the flag at its last flush: its capture samples twice as often.
    assert d.drift_tracker.flagged(fn.id, fn.live)
    from labelloop.usecases.capture import _policy

    view = d.serving.live_view(fn.id)
    assert _policy(d, view, view.model).budgets()[0].strategy.rate == pytest.approx(0.1)
