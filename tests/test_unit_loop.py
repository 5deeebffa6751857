"""The unit tier: the use cases on the in-memory repositories (tests/fakes.py, held to the same
contract as the DynamoDB ones by tests/test_data_contract.py) and the real encoder. The whole
loop, from an empty function to a retrain on a reviewed capture, in seconds and with no AWS."""

from __future__ import annotations

import time

import pytest
from fakes import memory_deps
from test_api import LABELS, SAMPLES

from labelloop.errors import Conflict, NotFound, NotReady
from labelloop.usecases import capture_policy as CP
from labelloop.usecases import functions as F
from labelloop.usecases import invoke as I
from labelloop.usecases import labels as L
from labelloop.usecases import review as R
from labelloop.usecases import samples as S
from labelloop.usecases import training_run as T
from labelloop.usecases.common import TrainingMessage


@pytest.fixture
def d(encoder):
    from labelloop.encoder import Encoders

    fast = Encoders()
    fast.put(encoder)
    return memory_deps(fast, LABELLOOP_TRAIN_DEBOUNCE_SECONDS=0)


def drain_training(d) -> list[T.RunResult]:
    """What the training queue's worker would do with every queued request."""
    out = []
    while d.queues.training:
        body, _ = d.queues.training.pop(0)
        out.append(T.run(d, TrainingMessage.model_validate(body)))
    return out


def test_the_loop_on_the_fakes(d):
    fn = F.create_function(d, "c1", "support", "Text", "Classification")
    for name, description in LABELS.items():
        L.create_label(d, "c1", fn.id, name, description)
    with pytest.raises(Conflict) as err:
        L.create_label(d, "c1", fn.id, "bug")
    assert err.value.extra["existingLabelId"].startswith("label_")
    with pytest.raises(NotReady):
        I.invoke(d, "c1", fn.id, "refund please")
    ids = [S.create_sample(d, "c1", fn.id, text, annotation=S.LabelRef(label_name=label))
           .sample.id for text, label in SAMPLES]
    with pytest.raises(Conflict) as err:
        S.create_sample(d, "c1", fn.id, SAMPLES[0][0])
    assert err.value.extra["existingSampleId"] == f"sample_{ids[0]}"
    with pytest.raises(NotFound):  # another client's function does not exist for it
        S.create_sample(d, "c2", fn.id, "hello")

    # Every change asked for a run; the requests coalesced into one message.
    assert len(d.queues.training) == 1
    (first,) = drain_training(d)
    assert first.version == 1 and d.functions.get(fn.id).live == 1
    assert F.metrics(d, "c1", fn.id)["isTraining"] is False

    # Invokes: right answers, and the uncertain ones captured for review.
    out = I.invoke(d, "c1", fn.id, "my invoice shows the wrong amount")
    assert d.labels.get(fn.id, out.prediction.label_id).name == "billing"
    assert d.invokes.get(fn.id, out.sample_id, time.time()).data.startswith("my invoice")
    CP.set_policy(d, "c1", fn.id, {"random": {"rate": 1.0, "quota": 2}})
    for text in ["the export button does nothing", "charged twice?", "app crashed on login"]:
        I.invoke(d, "c1", fn.id, text)
    queue = R.review_queue(d, "c1", fn.id, None, 10)
    assert len(queue) >= 2 and {i.capture_reason for i in queue} >= {"random"}
    assert d.ledger.counters(fn.id)["random"] == 2  # the quota, exactly

    # A reviewer annotates the top item: its slot is freed and a retrain is queued.
    top = queue[0]
    used = d.ledger.counters(fn.id)[top.capture_reason]
    S.annotate(d, "c1", fn.id, top.id, S.LabelRef(label_name="bug"))
    assert d.samples.get(fn.id, top.id).buffer is None
    assert d.ledger.counters(fn.id)[top.capture_reason] == used - 1
    (second,) = drain_training(d)
    assert second.version == 2
    assert d.model_versions.get(fn.id, 2).sample_count == len(SAMPLES) + 1

    # Deleting a label clears its annotations and asks for a retrain.
    bug = next(lb for lb in d.labels.list(fn.id) if lb.name == "bug")
    L.delete_label(d, "c1", fn.id, bug.id)
    assert all(s.annotation != bug.id for s in d.samples.facts(fn.id))
    assert len(d.queues.training) == 1
    F.delete_function(d, "c1", fn.id)
    assert d.functions.deleted(fn.id) and not d.objects.objects


def test_a_retrain_after_new_annotations_starts_from_the_live_version(encoder):
    from labelloop.encoder import Encoders
    from labelloop.usecases import model_versions as MV

    fast = Encoders()
    fast.put(encoder)
    d = memory_deps(fast, LABELLOOP_TRAIN_DEBOUNCE_SECONDS=0, LABELLOOP_WARM_MIN_SAMPLES=0,
                    LABELLOOP_SEARCH_GROWTH=0.5)
    fn = F.create_function(d, "c1", "support", "Text", "Classification")
    for name, description in LABELS.items():
        L.create_label(d, "c1", fn.id, name, description)
    for text, label in SAMPLES:
        S.create_sample(d, "c1", fn.id, text, annotation=S.LabelRef(label_name=label))
    (first,) = drain_training(d)
    v1 = d.model_versions.get(fn.id, first.version)
    assert v1.search["warm"] is False and first.decision.reason == "first model"
    live = d.serving.model(fn.id, first.version)
    assert live.meta.search.samples == len(SAMPLES) and live.meta.search.changed == 0

    S.create_sample(d, "c1", fn.id, "the refund never arrived",
                    annotation=S.LabelRef(label_name="billing"))
    (second,) = drain_training(d)
    v2 = d.model_versions.get(fn.id, second.version)
    assert v2.search["warm"] is True and v2.search["C"] == v1.search["C"]
    assert "1 of" in v2.search["why"] and v2.sample_count == len(SAMPLES) + 1
    head1, head2 = live.head, d.serving.model(fn.id, second.version).head
    assert head2.temperature == head1.temperature
    assert head2.lexical_weight == head1.lexical_weight
    # The promotion rule compared on the new annotation.
    assert "on 1 new annotations" in v2.decision
    assert d.serving.model(fn.id, second.version).meta.search.changed == 1

    MV.train(d, "c1", fn.id, force=True)
    (third,) = drain_training(d)
    forced = d.model_versions.get(fn.id, third.version).search
    assert forced["warm"] is False and forced["why"] == "forced"


def test_changes_wait_out_the_debounce_but_a_requested_run_starts_at_once(encoder):
    """An import (bulk, train=false) then "train": the burst is over, so no window to wait."""
    from labelloop.encoder import Encoders
    from labelloop.usecases import model_versions as MV

    fast = Encoders()
    fast.put(encoder)
    d = memory_deps(fast, LABELLOOP_TRAIN_DEBOUNCE_SECONDS=30)
    fn = F.create_function(d, "c1", "support", "Text", "Classification")
    L.create_label(d, "c1", fn.id, "billing")
    assert [delay for _, delay in d.queues.training] == [30]
    drain_training(d)
    billing = S.LabelRef(label_name="billing")
    S.create_samples(d, "c1", fn.id, [S.NewSample(data=text, annotation=billing)
                                      for text, _ in SAMPLES], train=False)
    assert d.queues.training == []
    MV.train(d, "c1", fn.id, force=False)
    ((body, delay),) = d.queues.training
    assert delay == 0 and body["reason"] == "requested" and body["force"] is False
