"""One contract, two implementations: the boto3 repositories on moto and the in-memory fakes
of the unit tier (tests/fakes.py) must answer alike, errors and conditions included."""

from __future__ import annotations

import hashlib
import time
from types import SimpleNamespace

import numpy as np
import pytest
from fakes import (
    MemoryClients,
    MemoryFunctions,
    MemoryInvokes,
    MemoryLabels,
    MemoryLedger,
    MemoryModelVersions,
    MemoryObjects,
    MemoryQueues,
    MemorySamples,
)

from labelloop.capture.decide import Slot, Take
from labelloop.data.objects import input_prefix
from labelloop.domain import (
    ClientItem,
    FunctionItem,
    InvokeItem,
    LabelItem,
    ModelVersionItem,
    SampleItem,
    encode_views,
)
from labelloop.errors import BadRequest, Busy, Conflict, NotFound


@pytest.fixture(params=["moto", "memory"])
def repos(request):
    if request.param == "memory":
        samples = MemorySamples()
        return SimpleNamespace(clients=MemoryClients(), functions=MemoryFunctions(),
                               labels=MemoryLabels(), samples=samples,
                               ledger=MemoryLedger(samples), invokes=MemoryInvokes(),
                               model_versions=MemoryModelVersions(), objects=MemoryObjects(),
                               queues=MemoryQueues())
    request.getfixturevalue("aws")
    from labelloop.container import Deps

    return Deps()


def fn_item(fid="f1", client="c1", **extra) -> FunctionItem:
    return FunctionItem(id=fid, client=client, name="support", created_at=1.0, **extra)


def label(lid: str, name: str, fid="f1") -> LabelItem:
    return LabelItem(id=lid, function_id=fid, name=name, created_at=1.0, prior_embeddings=b"",
                     prior_tokens=[])


def sample(sid: str, text: str, fid="f1", **extra) -> SampleItem:
    emb = np.full(4, 0.5, np.float32)
    return SampleItem(id=sid, function_id=fid, data=text, created_at=1.0,
                      data_hash=hashlib.sha256(text.encode()).hexdigest(),
                      embedding=emb.tobytes(), tokens=np.array([7, 9], np.int32).tobytes(),
                      **extra)


def test_functions(repos):
    f = repos.functions
    with pytest.raises(NotFound, match="function 'f1' not found"):
        f.get("f1")
    assert f.find("f1") is None
    f.put(fn_item())
    f.put(fn_item("f2", client="c2"))
    assert [x.id for x in f.list("c1")] == ["f1"]
    f.update("f1", name="renamed")
    assert f.get("f1").name == "renamed"
    with pytest.raises(NotFound):
        f.update("nope", name="x")
    assert [f.next_model_version("f1") for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NotFound):
        f.next_model_version("nope")
    f.set_live("f1", 1, None, [1])
    with pytest.raises(Conflict, match="changed meanwhile"):
        f.set_live("f1", 2, None, [1, 2])  # another writer moved it first
    f.set_live("f1", 2, 1, [1, 2])
    assert (f.get("f1").live, f.get("f1").live_history) == (2, [1, 2])
    f.delete("f1")
    assert f.find("f1") is None and not f.deleted("f1")
    f.bury("f1")
    assert f.deleted("f1") and not f.deleted("f2")


def test_the_training_lease(repos):
    f = repos.functions
    assert not f.request_training("f1", 10.0, 0.0)  # no such function
    f.put(fn_item())
    assert f.begin_training("f1", 10.0, 0.0) is None  # nothing pending
    assert f.request_training("f1", 10.0, 0.0)
    assert not f.request_training("f1", 11.0, 0.0)  # pending already: one message is enough
    assert f.request_training("f1", 12.0, 11.0)  # pending since before `stale`: lost, resend
    taken = f.begin_training("f1", 20.0, 0.0)
    assert taken.training_since == 20.0 and not taken.train_pending
    assert f.request_training("f1", 21.0, 0.0)  # a change during the run queues the next
    with pytest.raises(Busy):
        f.begin_training("f1", 22.0, 15.0)
    f.end_training("f1", 19.0, error="not mine")  # a run that lost the lease: no effect
    assert f.get("f1").training_since == 20.0
    f.end_training("f1", 20.0, error="boom")
    fn = f.get("f1")
    assert fn.training_since is None and fn.last_train_error == "boom"
    assert f.begin_training("f1", 30.0, 0.0).last_train_error is None
    with pytest.raises(NotFound):
        f.begin_training("nope", 30.0, 0.0)


def test_labels(repos):
    lb = repos.labels
    lb.create(label("l2", "bug"))
    lb.create(label("l1", "billing"))
    with pytest.raises(Conflict) as err:
        lb.create(label("l3", "bug"))
    assert err.value.extra == {"existingLabelId": "l2"}
    assert [x.id for x in lb.list("f1")] == ["l1", "l2"] and lb.list("f2") == []
    with pytest.raises(NotFound, match="label 'l9' not found"):
        lb.get("f1", "l9")
    old = lb.get("f1", "l2")
    with pytest.raises(Conflict, match="'billing' exists"):
        lb.replace(old, old.model_copy(update={"name": "billing"}))
    lb.replace(old, old.model_copy(update={"name": "defect", "description": "d"}))
    assert lb.get("f1", "l2").description == "d"
    lb.create(label("l4", "bug"))  # the rename freed the old name
    lb.delete(lb.get("f1", "l1"))
    lb.create(label("l5", "billing"))  # so did the deletion
    assert [x.name for x in lb.list("f1")] == ["defect", "bug", "billing"]


def counted(repos, fid="f1") -> tuple[int, dict[str, int]]:
    """The kept counts, checked against counting every sample."""
    kept = repos.samples.counts(fid)
    every = list(repos.samples.facts(fid))
    annotated: dict[str, int] = {}
    for x in every:
        if x.annotation is not None:
            annotated[x.annotation] = annotated.get(x.annotation, 0) + 1
    assert (kept.samples, kept.annotated) == (len(every), annotated)
    return kept.samples, kept.annotated


def test_samples(repos):
    s = repos.samples
    repos.functions.put(fn_item())  # its counts start with it
    assert counted(repos) == (0, {})
    for i in range(5):
        s.create(sample(f"s{i}", f"text {i}", external_id="e" if i % 2 else None,
                        origin="API" if i < 3 else "InvokeFeedback"))
    with pytest.raises(Conflict) as err:
        s.create(sample("s9", "text 1"))
    assert err.value.extra == {"existingSampleId": "s1"}
    with pytest.raises(NotFound, match="sample 'x' not found"):
        s.get("f1", "x")
    assert [x.id for x in s.get_many("f1", ["s3", "x", "s0"])] == ["s3", "s0"]
    page, after = s.page("f1", 2, False, None)
    assert [x.id for x in page] == ["s0", "s1"] and after == "s1"
    page, after = s.page("f1", 2, False, after)
    assert [x.id for x in page] == ["s2", "s3"] and after == "s3"
    page, after = s.page("f1", 3, False, after)
    assert [x.id for x in page] == ["s4"] and after is None
    assert [x.id for x in s.page("f1", 10, True, "s3")[0]] == ["s2", "s1", "s0"]
    assert [x.id for x in s.page("f1", 10, False, None, external_id="e")[0]] == ["s1", "s3"]
    assert [x.id for x in s.page("f1", 10, False, None, origin="InvokeFeedback")[0]] == [
        "s3", "s4"]
    assert s.count("f1", 1000) == 5
    s.set_annotation("f1", "s1", "l1", was=None)
    s.set_annotation("f1", "s2", "l2", was=None)
    assert counted(repos) == (5, {"l1": 1, "l2": 1})
    with pytest.raises(Conflict, match="changed meanwhile"):
        s.set_annotation("f1", "s2", "l1", was=None)  # annotated l2 since it was read
    assert counted(repos) == (5, {"l1": 1, "l2": 1})
    assert s.get("f1", "s1").annotation == "l1" and s.get("f1", "s1").annotated_at
    s.keep("f1", "s1", "l1")
    assert s.get("f1", "s1").kept == "l1"
    with pytest.raises(Conflict, match="no longer annotated"):
        s.keep("f1", "s2", "l1")  # annotated l2 meanwhile
    with pytest.raises(Conflict):
        s.keep("f1", "x", "l1")
    s.set_annotation("f1", "s2", None, was="l1", quiet=True)  # re-annotated since: kept
    assert s.get("f1", "s2").annotation == "l2"
    s.set_annotation("f1", "s2", None, was="l2", quiet=True)
    assert s.get("f1", "s2").annotation is None
    assert counted(repos) == (5, {"l1": 1})
    with pytest.raises(NotFound):
        s.set_annotation("f1", "x", "l1", was=None)
    facts = {x.id: x for x in s.facts("f1")}
    assert facts["s1"].annotation == "l1" and facts["s4"].origin == "InvokeFeedback"
    assert [r.facts.id for r in s.training_rows("f1")] == ["s1"]
    row = next(s.training_rows("f1"))
    assert row.embedding.tolist() == [0.5] * 4 and row.tokens.tolist() == [7, 9]
    assert row.views is None
    views = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
    s.set_annotation("f1", "s3", "l2", was=None,
                     views=encode_views(views))  # kept with the annotation
    rows = {r.facts.id: r for r in s.training_rows("f1")}
    assert rows["s3"].views.tolist() == views.tolist() and rows["s1"].views is None
    assert s.get("f1", "s3").views == encode_views(views)
    s.set_annotation("f1", "s3", None, was="l2")
    assert [v.id for v in s.vectors("f1")] == ["s0", "s1", "s2", "s3", "s4"]
    s.delete(s.get("f1", "s0"), keep_claim=True)
    s.create(sample("s5", "text 0"))  # a dismissed claim stops captures, not samples
    stale = s.get("f1", "s1")
    s.set_annotation("f1", "s1", "l2", was="l1")
    with pytest.raises(Conflict, match="changed meanwhile"):
        s.delete(stale)  # read as l1: not deleted, not counted
    s.delete(s.get("f1", "s1"))
    with pytest.raises(Conflict):
        s.delete(stale)  # gone
    s.create(sample("s6", "text 1", annotation="l1"))
    assert s.count("f1", 1000) == 5
    assert counted(repos) == (5, {"l1": 1})


def test_samples_created_many_at_once(repos):
    """Three transactions' worth; a claim that fails (stored already, or earlier in the same
    call) fails only its sample, with the Conflict `create` would raise."""
    s = repos.samples
    repos.functions.put(fn_item())
    s.create(sample("s0", "text 0"))
    batch = [sample(f"m{i}", f"many {i}") for i in range(120)]
    batch[7] = sample("m7", "text 0")
    batch[60] = sample("m60", "many 3")
    out = s.create_many(batch)
    assert [i for i, c in enumerate(out) if c is not None] == [7, 60]
    assert out[7].extra == {"existingSampleId": "s0"}
    assert out[60].extra == {"existingSampleId": "m3"}
    assert s.count("f1", 1000) == 1 + 118 and s.get("f1", "m119").data == "many 119"
    with pytest.raises(NotFound):
        s.get("f1", "m60")
    counted(repos)  # what failed was not counted


def test_model_versions_objects_clients_queues(repos):
    mv = repos.model_versions
    with pytest.raises(NotFound, match="model version 1 not found"):
        mv.get("f1", 1)
    for v in (2, 1):
        mv.put(ModelVersionItem(function_id="f1", version=v, created_at=1.0, artifact_key="k",
                                zero_shot=False, label_ids=["l1"], sample_count=3))
    mv.mark_promoted("f1", 2, "promoted: better", True)
    mv.record_thresholds("f1", 2, {"policy": {"accept": {"confidence": 0.7}}})
    assert [(m.version, m.promoted) for m in mv.list("f1")] == [(1, False), (2, True)]
    assert mv.get("f1", 2).thresholds == {"policy": {"accept": {"confidence": 0.7}}}

    o = repos.objects
    o.put_artifact("f1", 1, "head.npz", b"head")
    assert o.get_artifact("f1", 1, "head.npz") == b"head"
    with pytest.raises(NotFound, match="model artifact not found"):
        o.get_artifact("f1", 2, "head.npz")
    for part in (2, 0, 1):
        o.put_results("f1", "j1", part, f"{part}\n".encode())
    keys = list(o.result_keys("f1", "j1", after_part=0))
    assert [o.get_results(k) for k in keys] == [b"1\n", b"2\n"]
    assert o.results_uri("f1", "j1").endswith("/batches/f1/j1/")
    o.put_image("f1", "ab12", b"\xff\xd8\xff", "image/jpeg")
    assert o.get_image("f1", "ab12") == (b"\xff\xd8\xff", "image/jpeg")
    with pytest.raises(NotFound, match="image not found"):
        o.get_image("f2", "ab12")
    # A batch input is put by the user (with AWS access), under the function's input prefix.
    key = input_prefix("f1") + "cats/1.jpg"
    if isinstance(o, MemoryObjects):
        o.objects[key] = b"\xff\xd8\xff" * 100
    else:
        repos.s3.put_object(Bucket=o.bucket, Key=key, Body=b"\xff\xd8\xff" * 100)
    assert o.get_input(key, 1024) == b"\xff\xd8\xff" * 100
    with pytest.raises(BadRequest, match="data: the object is over 0 MiB"):
        o.get_input(key, 299)
    with pytest.raises(NotFound, match="no such object"):
        o.get_input(input_prefix("f1") + "cats/2.jpg", 1024)
    o.delete_function("f1")
    with pytest.raises(NotFound):
        o.get_input(key, 1024)
    assert list(o.result_keys("f1", "j1")) == []
    with pytest.raises(NotFound):
        o.get_image("f1", "ab12")
    with pytest.raises(NotFound):
        o.get_artifact("f1", 1, "head.npz")

    c = repos.clients
    assert c.get("a") is None
    c.put(ClientItem(id="a", secret_hash="h", created_at=time.time()))
    assert c.get("a").secret_hash == "h"
    assert [c.count_token_failure("a", 60, 999) for _ in range(2)] == [1, 2]
    assert (c.token_failures("a", 60), c.token_failures("a", 120)) == (2, 0)


def captured(sid: str, text: str, priority: float, strategy="uncertainty") -> SampleItem:
    return sample(sid, text, origin="InvokeCapture", capture_reason=strategy, buffer=strategy,
                  priority=priority, predicted_label_id=f"label-{text}")


def test_the_capture_ledger(repos):
    led, s = repos.ledger, repos.samples
    repos.functions.put(fn_item())
    led.capture(captured("c1", "a", 0.5), 2, None)
    led.capture_many([(captured("c2", "b", 0.9), Take("uncertainty", 0.9, 2)),
                      (captured("c3", "c", 0.1, "random"), Take("random", 0.1, 5))])
    assert led.counters("f1") == {"uncertainty": 2, "random": 1}
    with pytest.raises(Conflict):  # full
        led.capture(captured("c4", "d", 0.7), 2, None)
    with pytest.raises(Conflict):  # the same text again
        led.capture(captured("c4", "b", 0.7, "random"), 5, None)
    with pytest.raises(Conflict):  # nothing of a failed batch is written
        led.capture_many([(captured("c4", "d", 0.7, "random"), Take("random", 0.7, 5)),
                          (captured("c5", "e", 0.8), Take("uncertainty", 0.8, 2))])
    assert led.counters("f1") == {"uncertainty": 2, "random": 1}
    with pytest.raises(NotFound):
        s.get("f1", "c4")
    assert led.lowest("f1", "uncertainty", 5) == [
        Slot("c1", 0.5, captured("c1", "a", 0.5).data_hash),
        Slot("c2", 0.9, captured("c2", "b", 0.9).data_hash)]
    (lowest,) = led.lowest("f1", "uncertainty", 1)
    assert counted(repos) == (3, {})
    led.capture(captured("c4", "d", 0.7), 2, lowest)  # takes over the lowest one's slot
    with pytest.raises(Conflict):  # that slot was taken over already
        led.capture(captured("c5", "e", 0.8), 2, lowest)
    assert counted(repos) == (3, {})  # one in, the replaced one out
    assert [i.id for i in led.page("f1", "uncertainty", 10)] == ["c2", "c4"]
    assert [i.id for i in led.page("f1", "uncertainty", 1, after=s.get("f1", "c2"))] == ["c4"]
    assert [i.id for i in led.items("f1", "uncertainty")] == ["c4", "c2"]
    (b,) = led.buffered("f1", "random")
    c3 = s.get("f1", "c3")
    assert (b.slot, b.label_id) == (Slot("c3", c3.priority, c3.data_hash), "label-c")
    assert np.array_equal(b.embedding, c3.features().embeddings[0])
    led.rescore(s.get("f1", "c4"), 0.95)
    assert [i.id for i in led.page("f1", "uncertainty", 10)] == ["c4", "c2"]
    # Annotating frees the slot, once; a second try finds the item gone from the buffer.
    s.set_annotation("f1", "c2", "l1", was=None, buffer="uncertainty")
    with pytest.raises(Conflict):
        s.set_annotation("f1", "c2", "l1", was=None, buffer="uncertainty")
    assert led.counters("f1")["uncertainty"] == 1 and s.get("f1", "c2").buffer is None
    assert counted(repos) == (3, {"l1": 1})
    led.rescore(s.get("f1", "c4").model_copy(update={"buffer": "random"}), 0.0)  # not there
    assert s.get("f1", "c4").priority == 0.95
    led.return_to_buffer(s.get("f1", "c2"), 2)
    assert s.get("f1", "c2").annotation is None and led.counters("f1")["uncertainty"] == 2
    with pytest.raises(Conflict):
        led.return_to_buffer(s.get("f1", "c2"), 2)  # buffered already
    assert counted(repos) == (3, {})
    s.delete(s.get("f1", "c4"))
    assert led.counters("f1")["uncertainty"] == 1
    assert [i.id for i in led.page("f1", "uncertainty", 10)] == ["c2"]
    assert counted(repos) == (2, {})


def test_invokes(repos):
    inv = repos.invokes
    for i, expires in enumerate([100, 200, 300, 400]):
        inv.put(InvokeItem(function_id="f1", sample_id=f"s{i}", data=f"t{i}", model_version=1,
                           label_id="l1", confidence=0.5, margin=0.1, created_at=1.0,
                           expires_at=expires))
    assert inv.get("f1", "s1", 150).data == "t1"
    assert inv.get("f1", "s0", 150) is None and inv.get("f1", "x", 0) is None  # expired; absent
    page, after = inv.page("f1", 2, None, 150)
    assert [r.sample_id for r in page] == ["s3", "s2"] and after == "s2"
    assert inv.page("f1", 2, after, 150)[0] == [inv.get("f1", "s1", 150)]
