"""Capture-policy evaluation: a labelled dataset replayed as invokes through the real capture.

For each dataset, policy and seed, a fresh function in an in-process moto account (mock_aws),
driven through the real use cases: one label per class, 2 annotated samples per label (drawn
with the seed from the train split), a training run; then `--rounds` rounds of: invoke the
next `--chunk` texts of the stream (the rest of the train split, shuffled with the seed)
with capture on (`usecases.invoke.invoke`: outside a request the capture runs inline), let a
simulated annotator take `--per-round` items from the review queue and annotate each with its
true label (`usecases.samples.annotate`), run the training worker once
(`usecases.train.run`, what the SQS worker does: train, then promote or not by the product's
rule) and evaluate the live model on the test split (accuracy, macro-F1).

The annotator shares its labels among the strategies in proportion to their quotas (largest
remainder), highest priority first within each; what a strategy cannot fill goes to the others.
Embeddings come from the benchmark cache (`benchlib.featurize_cached`): the injected encoder
serves stored `Features` by text and falls back to the real encoder (label names). moto's
DynamoDB is made fast enough by `speed_up_moto` (same answers, far fewer O(table) steps per
request; EVAL_CAPTURE_VERIFY_MOTO=1 checks every shortcut against moto's own code).

Policies: `random` (random only, rate 1), `margin` (uncertainty only, threshold 0), `mix`
(60/20/20: uncertainty 300 threshold 0, random 100 rate 0.2, rare_class 100), `default`
(`CapturePolicy()` with no overrides); more with `--policy name=JSON` (the strategies dict
given to `usecases.capture.set_policy`, unset quotas are NOT zeroed: give them).

Summary per policy: final accuracy vs the issue's anchor; labels-to-target (labels the policy
needed to first reach random-only's final accuracy, interpolated between rounds, over
random-only's total; ">1" if never); coverage (classes given >= 1 new label); labels given to
the rarest classes (the 10 % of classes with the fewest invokes in the replayed stream) and
how many of those got one. Targets: (1) labels-to-target <= 0.5; (2) final accuracy within
0.5 point of margin-only; (3) coverage and labels to the rarest classes both >= the mix's.
The effective number of classes (exp of the entropy of the new labels' classes) is shown too.

    python scripts/eval_capture.py [--datasets banking77 clinc150] [--policies default random
        margin mix] [--policy 'p80={"uncertainty": {"quota": 400}, ...}'] [--seeds 1]
        [--rounds 10] [--chunk 500] [--per-round 50] [--start 2] [--reuse earlier.out]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from benchlib import emit_json, featurize_cached, load_dataset, print_table
from labelloop.encoder import Encoder, Features
from labelloop.metrics import macro_f1

OFF = {"quota": 0}
POLICIES: dict[str, dict | None] = {
    "default": None,  # CapturePolicy() as shipped: no overrides
    "random": {"random": {"quota": 500, "rate": 1.0}, "uncertainty": OFF, "rare_class": OFF},
    "margin": {"random": OFF, "uncertainty": {"quota": 500, "threshold": 0.0},
               "rare_class": OFF},
    "mix": {"random": {"quota": 100, "rate": 0.2}, "uncertainty": {"quota": 300, "threshold": 0.0},
            "rare_class": {"quota": 100}},
}
# The measurements on the same encoder: accuracy after 500 labels.
ANCHOR = {"banking77": {"random": 0.809, "margin": 0.854, "mix": 0.840},
          "clinc150": {"random": 0.838, "margin": 0.885, "mix": 0.871}}
CLIENT = "eval-client"
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
       "AWS_SECRET_ACCESS_KEY": "test", "POWERTOOLS_TRACE_DISABLED": "1",
       "LABELLOOP_TRAIN_DEBOUNCE_SECONDS": "0",
       # Every write this process makes invalidates the caches it affects (one container),
       # so a long TTL changes no decision, only saves moto reads.
       "LABELLOOP_CACHE_SECONDS": "300"}


class CachedEncoder:
    """The real encoder's interface, serving precomputed `Features` by text."""

    def __init__(self, encoder: Encoder, texts: list[str], features: Features):
        self._enc = encoder
        self._rows = {t: i for i, t in enumerate(texts)}
        self._feats = features
        self.misses = 0

    def __getattr__(self, name):  # manifest, dim, wordpieces, ...
        return getattr(self._enc, name)

    def _add(self, texts: list[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if not new:
            return
        self.misses += len(new)
        f = self._enc.featurize(new)
        base = len(self._feats)
        self._feats = Features(np.concatenate([self._feats.embeddings, f.embeddings]),
                               [*self._feats.tokens, *f.tokens])
        self._rows.update({t: base + i for i, t in enumerate(new)})

    def featurize(self, texts, batch_size: int = 32) -> Features:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        self._add(list(texts))
        return self._feats.take([self._rows[t] for t in texts])

    def featurize_one(self, text: str) -> Features:
        return self.featurize([text])

    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        return self.featurize(texts).embeddings

    def embed_one(self, text: str) -> np.ndarray:
        return self.featurize([text]).embeddings[0]


def speed_up_moto() -> None:
    """Make moto's DynamoDB usable at this scale without changing what it answers.

    Unpatched, every request costs O(table) in slow Python: each query sorts the whole table
    comparing `DynamoType`s through `cast_value` and sizes every item of the partition, each
    transaction deep-copies every table it touches for its rollback, and each attribute of a
    response goes through the generic serializer. With a few thousand items per function
    that is 0.1-0.5 s per call: hours per replay. Patched (moto 5.2): string/binary
    comparisons and begins_with skip `cast_value`; the table's key order is kept until an
    item is put or deleted, an item's size until it is updated; a transaction snapshots only
    the items it names (restored if it fails, as moto's own rollback would); AttributeValues
    of the common kinds are serialized directly. EVAL_CAPTURE_VERIFY_MOTO=1 recomputes each
    shortcut the slow way and asserts the same result (tests/ pass under it too)."""
    import base64
    import copy
    import types

    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb import models as backend
    from moto.dynamodb.models import table as tables
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_eval_capture_fast", False):
        return
    verify = os.environ.get("EVAL_CAPTURE_VERIFY_MOTO") == "1"  # check each shortcut
    DynamoType._eval_capture_fast = True
    eq, lt = DynamoType.__eq__, DynamoType.__lt__

    def fast_eq(self, other):
        t = self.type
        if (t == "S" or t == "B") and type(other) is DynamoType and other.type == t:
            return self.value == other.value
        return eq(self, other)

    def fast_lt(self, other):
        t = self.type
        if (t == "S" or t == "B") and type(other) is DynamoType and other.type == t:
            return self.value < other.value
        return lt(self, other)

    DynamoType.__eq__, DynamoType.__lt__ = fast_eq, fast_lt
    DynamoType.__ne__ = lambda self, other: not fast_eq(self, other)

    def key_of(v):
        return None if v is None else v.cast_value

    # The table's items in key order, kept until an item is put or deleted.
    def all_items(self):
        cached = self.__dict__.get("_eval_sorted")
        if cached is None or verify:
            items = [i for h in self.items.values()
                     for i in (h.values() if self.range_key_attr else [h])]
            fresh = sorted(items, key=lambda x: (key_of(x.hash_key), key_of(x.range_key))
                           if x.range_key else key_of(x.hash_key))
            assert cached is None or [id(i) for i in cached] == [id(i) for i in fresh]
            cached = self._eval_sorted = fresh
        return list(cached)

    def changes_keys(method):
        def wrapper(self, *args, **kwargs):
            self.__dict__.pop("_eval_sorted", None)
            return method(self, *args, **kwargs)
        return wrapper

    tables.Table.put_item = changes_keys(tables.Table.put_item)
    tables.Table.delete_item = changes_keys(tables.Table.delete_item)

    def sorted_items(self, hash_key_attrs, range_key_attrs, items):
        attrs = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda x: tuple(x.attrs[a].cast_value for a in attrs))
        return items

    tables.Table.all_items, tables.Table.sorted_items = all_items, sorted_items

    transact = backend.DynamoDBBackend.transact_write_items
    no_table_copy = types.SimpleNamespace(
        deepcopy=lambda x, memo=None: x if isinstance(x, tables.Table) else copy.deepcopy(
            x, memo), copy=copy.copy)

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or op["Item"]
            h = DynamoType(key[table.hash_key_attr])
            r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            old = table.items.get(h, {}).get(r) if r is not None else table.items.get(h)
            saved.append((table, h, r, copy.deepcopy(old)))
        backend.copy = no_table_copy
        try:
            return transact(self, transact_items)
        except Exception:
            for table, h, r, old in reversed(saved):
                table.__dict__.pop("_eval_sorted", None)
                if r is None:
                    table.items.pop(h, None) if old is None else table.items.__setitem__(h, old)
                elif old is None:
                    table.items[h].pop(r, None)
                else:
                    table.items[h][r] = old
            raise
        finally:
            backend.copy = copy

    backend.DynamoDBBackend.transact_write_items = transact_write_items

    size = DynamoType.size

    def fast_size(self):
        if self.type == "S" or self.type == "B":
            return len(self.value) if isinstance(self.value, bytes) else len(
                self.value.encode())
        return size(self)

    DynamoType.size = fast_size

    # An item's size, kept until it is updated in place (puts make new items).
    def item_size(self):
        cached = self.__dict__.get("_eval_size")
        if cached is not None and not verify:
            return cached
        n = 0
        for k, v in self.attrs.items():
            x = v.value
            n += len(k.encode()) + (len(x) if type(x) is bytes else len(x.encode()) if (
                v.type == "S" or v.type == "B") else v.size())
        assert cached is None or cached == n
        self._eval_size = n
        return n

    from moto.dynamodb.models.dynamo_type import Item
    Item.size = item_size
    update_item = backend.DynamoDBBackend.update_item

    def forget_size(self, table_name, key):
        try:
            table = self.get_table(table_name)
            h = DynamoType(key[table.hash_key_attr])
            r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(h, r)
        except Exception:
            return
        if item is not None:
            item.__dict__.pop("_eval_size", None)

    def update_item_forgetting_size(self, table_name, key, *args, **kwargs):
        forget_size(self, table_name, key)
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:
            forget_size(self, table_name, key)

    backend.DynamoDBBackend.update_item = update_item_forgetting_size

    compare = DynamoType.compare

    def fast_compare(self, op, objs):
        if (op == "BEGINS_WITH" and self.type == "S" and len(objs) == 1
                and type(objs[0]) is DynamoType and objs[0].type == "S"):
            return self.value.startswith(objs[0].value)
        return compare(self, op, objs)

    DynamoType.compare = fast_compare

    # Responses: an AttributeValue of the common kinds serialized directly (the generic
    # serializer walks its ten members through alias lookups, ~50 us each, per attribute).
    structure = BaseJSONSerializer._serialize_type_structure

    def attribute_value(v):
        if not isinstance(v, dict) or len(v) != 1:
            return None
        ((t, x),) = v.items()
        if t in ("S", "N"):
            return {t: str(x)} if isinstance(x, str) else None
        if t == "B":
            return {t: base64.b64encode(x).decode()} if isinstance(x, bytes) else None
        if t == "M":
            m = {k: attribute_value(i) for k, i in x.items()}
            return None if any(i is None for i in m.values()) else {t: m}
        if t == "L":
            items = [attribute_value(i) for i in x]
            return None if any(i is None for i in items) else {t: items}
        return None

    def fast_structure(self, serialized, value, shape, key):
        if key and shape.name == "AttributeValue" and (out := attribute_value(value)) is not None:
            if verify:
                expected: dict = {}
                structure(self, expected, value, shape, key)
                assert expected == {key: out}, (expected, out)
            serialized[key] = out
            return
        structure(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = fast_structure


@contextmanager
def moto_deps(encoder, seed: int):
    """A fresh moto account with labelloop's resources and a container pointing at it."""
    import boto3
    from moto import mock_aws

    from labelloop import container
    from labelloop.capture.state import CaptureCache

    saved = {k: os.environ.get(k) for k in ENV}
    saved["AWS_ENDPOINT_URL"] = os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(ENV)
    env: dict[str, str] = {}
    try:
        with mock_aws():
            from labelloop.resources import create_all

            env = create_all(boto3.Session(), "eval")
            for k, v in env.items():
                saved.setdefault(k, os.environ.get(k))
                os.environ[k] = v
            d = container.Deps()
            d.__dict__["encoder"] = encoder
            # The random strategy's draws: seeded, so a run is reproducible.
            d.__dict__["captures"] = CaptureCache(d.store, d.settings.cache_seconds, seed=seed)
            container.reset(d)
            yield d
    finally:
        container.reset(None)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@dataclass
class Run:
    """One (dataset, policy, seed) replay."""

    labels: list[int] = field(default_factory=list)  # new labels used, cumulative, per round
    accuracy: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    annotated: list[tuple[str, str]] = field(default_factory=list)  # (strategy, true label)
    promoted: int = 0
    not_promoted: int = 0
    rejected_gain: list[float] = field(default_factory=list)  # candidate - live, test accuracy
    captured: dict[str, int] = field(default_factory=dict)  # per strategy, over all invokes
    seconds: float = 0.0


def allocate(total: int, quotas: dict[str, int], available: dict[str, int]) -> dict[str, int]:
    """`total` shared in proportion to quotas (largest remainder), capped by what each has;
    the shortfall of one goes to the others."""
    alloc = dict.fromkeys(quotas, 0)
    pool = [s for s, q in quotas.items() if q > 0 and available.get(s, 0) > 0]
    while pool and (left := total - sum(alloc.values())) > 0:
        qsum = sum(quotas[s] for s in pool)
        exact = {s: left * quotas[s] / qsum for s in pool}
        share = {s: math.floor(x) for s, x in exact.items()}
        for s in sorted(pool, key=lambda s: share[s] - exact[s])[:left - sum(share.values())]:
            share[s] += 1
        for s in pool:
            alloc[s] += min(share[s], available[s] - alloc[s])
        pool = [s for s in pool if alloc[s] < available[s]]
    return alloc


def evaluate(d, fid: str, test: Features, yte: np.ndarray,
             version: int | None = None) -> tuple[float, float]:
    """The live model's (or another version's) accuracy and macro-F1 on the test split."""
    view = d.serving.view(fid)
    head = (view.model if version is None else d.serving.model(fid, version)).head
    proba = head.predict_proba(test.embeddings, test.tokens if head.uses_tokens else None)
    names = np.array([view.labels[c].name for c in head.classes])
    pred = names[proba.argmax(axis=1)]
    return float((pred == yte).mean()), macro_f1(yte, pred)


def replay(encoder, ds: dict, policy: dict | None, seed: int, args, bar) -> Run:
    from labelloop.capture.decide import CapturePolicy
    from labelloop.ids import bare
    from labelloop.usecases import capture, functions, invoke, labels, samples, train
    from labelloop.usecases.common import TrainingMessage

    run, started = Run(), time.perf_counter()
    with moto_deps(encoder, seed) as d:
        fid = functions.create_function(d, CLIENT, f"eval-{seed}", "Text", "Classification").id
        for c in ds["classes"]:
            labels.create_label(d, CLIENT, fid, c)
        if policy is not None:
            capture.set_policy(d, CLIENT, fid, policy)
        quotas = {s.name: s.quota for s in CapturePolicy.model_validate(
            d.store.get_function(fid).capture).build()}
        for i in ds["start"][seed]:
            samples.create_sample(d, CLIENT, fid, ds["train"][i],
                                  annotation=samples.LabelRef(label_name=ds["ytrain"][i]))

        def retrain_and_evaluate(reason: str) -> None:
            result = train.run(d, TrainingMessage(functionId=bare(fid, "function"),
                                                  reason=reason))
            acc, f1 = evaluate(d, fid, ds["test"], ds["ytest"])
            if result.decision is not None:
                if result.decision.promote:
                    run.promoted += 1
                else:  # what keeping the live model cost (or saved), on the test split
                    run.not_promoted += 1
                    run.rejected_gain.append(
                        evaluate(d, fid, ds["test"], ds["ytest"], result.version)[0] - acc)
            run.labels.append(len(run.annotated))
            run.accuracy.append(acc)
            run.macro_f1.append(f1)

        retrain_and_evaluate("start")
        stream = ds["stream"][seed]
        for r in range(args.rounds):
            for i in stream[r * args.chunk:(r + 1) * args.chunk]:
                invoke.invoke(d, CLIENT, fid, ds["train"][i], capture=True)
            queues = {s: capture.review_queue(d, CLIENT, fid, s, args.per_round)
                      for s, q in quotas.items() if q > 0}
            take = allocate(args.per_round, quotas, {s: len(q) for s, q in queues.items()})
            for s, items in queues.items():
                for item in items[:take[s]]:
                    truth = ds["truth"][item.data]
                    samples.annotate(d, CLIENT, fid, item.id,
                                     samples.LabelRef(label_name=truth))
                    run.annotated.append((s, truth))
            retrain_and_evaluate(f"round {r + 1}")
            bar.update(1)
        for s in d.store.iter_samples(fid, projection="capture_reason"):
            if reason := s.get("capture_reason"):
                run.captured[reason] = run.captured.get(reason, 0) + 1
    run.seconds = time.perf_counter() - started
    return run


def labels_to_target(labels: list[float], acc: list[float], target: float) -> float | None:
    """Labels at which the curve first reaches `target` (linear between rounds)."""
    for k, a in enumerate(acc):
        if a >= target:
            if k == 0:
                return 0.0
            a0, l0, l1 = acc[k - 1], labels[k - 1], labels[k]
            return l0 + (target - a0) / (a - a0) * (l1 - l0)
    return None


def load(name: str, seeds: int, args, encoder: Encoder) -> tuple[dict, Features]:
    tr, ytr, te, yte = load_dataset(name)
    ftr = featurize_cached(encoder, tr, f"{name}-train")
    fte = featurize_cached(encoder, te, f"{name}-test")
    ytr_a = np.asarray(ytr)
    classes = sorted(set(ytr))
    ds = {"classes": classes, "train": tr, "ytrain": ytr, "test": fte, "ytest": np.asarray(yte),
          "truth": dict(zip(tr, ytr, strict=True)), "start": {}, "stream": {}, "rare": {}}
    need = args.rounds * args.chunk
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        start, seen = [], set()
        for c in classes:  # distinct texts: a repeated one would be one sample
            pool = [i for i in rng.permutation(np.flatnonzero(ytr_a == c)) if tr[i] not in seen]
            start += pool[:args.start]
            seen.update(tr[i] for i in pool[:args.start])
        rest = np.setdiff1d(np.arange(len(tr)), start)
        stream = rng.permutation(rest)
        if len(stream) < need:
            raise SystemExit(f"{name}: {len(stream)} stream texts, {need} needed")
        ds["start"][seed], ds["stream"][seed] = start, stream
        # The rarest classes of the replayed stream: the 10 % with the fewest invokes.
        counts = {c: 0 for c in classes}
        for i in stream[:need]:
            counts[ytr[i]] += 1
        k = max(1, math.ceil(0.1 * len(classes)))
        ds["rare"][seed] = set(sorted(classes, key=lambda c: (counts[c], c))[:k])
    return ds, ftr


def summarize(ds_name: str, ds: dict, runs: dict[str, list[Run]], seeds: int) -> dict:
    """Seed-averaged curves and per-policy figures for one dataset."""
    out: dict[str, dict] = {}
    for name, rs in runs.items():
        labels = np.mean([r.labels for r in rs], axis=0).tolist()
        acc = np.mean([r.accuracy for r in rs], axis=0).tolist()
        f1 = np.mean([r.macro_f1 for r in rs], axis=0).tolist()
        per_seed = []
        for seed, r in enumerate(rs):
            given: dict[str, int] = {}
            for _, y in r.annotated:
                given[y] = given.get(y, 0) + 1
            rare = ds["rare"][seed]
            p = np.array(list(given.values()), dtype=float) / max(len(r.annotated), 1)
            per_seed.append((len(given), sum(given.get(c, 0) for c in rare),
                             sum(1 for c in rare if given.get(c)),
                             float(np.exp(-(p * np.log(p)).sum())) if len(p) else 0.0))
        coverage, rare_labels, rare_covered, effective = np.mean(per_seed, axis=0).tolist()
        by_strategy: dict[str, int] = {}
        for r in rs:
            for s, _ in r.annotated:
                by_strategy[s] = by_strategy.get(s, 0) + 1
        out[name] = {
            "labels": [round(x, 1) for x in labels], "accuracy": [round(x, 4) for x in acc],
            "macro_f1": [round(x, 4) for x in f1], "final_accuracy": round(acc[-1], 4),
            "final_macro_f1": round(f1[-1], 4), "anchor": ANCHOR[ds_name].get(name),
            "coverage": round(coverage, 1), "classes": len(ds["classes"]),
            "rare_classes": len(ds["rare"][0]), "rare_labels": round(rare_labels, 1),
            "rare_classes_covered": round(rare_covered, 1),
            "effective_classes": round(effective, 1),
            "labels_by_strategy": {s: n / seeds for s, n in by_strategy.items()},
            "captured_by_strategy": {s: sum(r.captured.get(s, 0) for r in rs) / seeds
                                     for s in sorted({s for r in rs for s in r.captured})},
            "promoted": sum(r.promoted for r in rs), "not_promoted":
                sum(r.not_promoted for r in rs),
            "rejected_candidates_gain_pts": [round(100 * g, 2) for r in rs
                                             for g in r.rejected_gain],
            "wall_seconds": round(sum(r.seconds for r in rs), 1)}
    return out


def compare(out: dict[str, dict]) -> None:
    """Labels-to-target and the three targets, against the reference policies present."""
    base = out.get("random")
    for f in out.values():
        if base is not None:
            at = labels_to_target(f["labels"], f["accuracy"], base["final_accuracy"])
            f["labels_to_target"] = None if at is None else round(at / base["labels"][-1], 3)
        targets = {}
        if f.get("labels_to_target") is not None or base is not None:
            targets["half_labels"] = (f.get("labels_to_target") is not None
                                      and f["labels_to_target"] <= 0.5)
        if "margin" in out:
            targets["near_margin"] = f["final_accuracy"] >= out["margin"]["final_accuracy"] - 0.005
        if "mix" in out:
            targets["spread"] = (f["coverage"] >= out["mix"]["coverage"]
                                 and f["rare_labels"] >= out["mix"]["rare_labels"])
        f["targets"] = targets


def parse_policy(arg: str) -> tuple[str, dict]:
    name, _, text = arg.partition("=")
    if not name or not text:
        raise argparse.ArgumentTypeError("--policy name=JSON")
    return name, json.loads(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["banking77", "clinc150"])
    p.add_argument("--policies", nargs="+", default=None,
                   help="names to run (default: the four built-in ones and every --policy)")
    p.add_argument("--policy", action="append", type=parse_policy, default=[],
                   metavar="NAME=JSON", help="an extra policy: a strategies dict")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--per-round", type=int, default=50)
    p.add_argument("--start", type=int, default=2, help="annotated samples per label at start")
    p.add_argument("--reuse", metavar="FILE",
                   help="an earlier run's output (its last line): its policies' figures are "
                        "shown and compared with, without running them again")
    args = p.parse_args()
    policies = {**POLICIES, **dict(args.policy)}
    names = args.policies or list(policies)
    unknown = [n for n in names if n not in policies]
    if unknown:
        raise SystemExit(f"unknown policies {unknown} (known: {', '.join(policies)})")

    speed_up_moto()
    enc = Encoder(threads=1)
    config = {"seeds": args.seeds, "rounds": args.rounds, "chunk": args.chunk,
              "per_round": args.per_round, "start": args.start}
    reused: dict = {}
    if args.reuse:
        with open(args.reuse) as f:
            earlier = json.loads(f.read().strip().splitlines()[-1])
        if {k: earlier["config"].get(k) for k in config} != config:
            raise SystemExit(f"--reuse: {args.reuse} was run with other settings "
                             f"({earlier['config']})")
        reused = {ds: {n: v for n, v in earlier[ds].items() if n not in names}
                  for ds in args.datasets if ds in earlier}
        for pols in reused.values():
            for n in pols:
                policies.setdefault(n, earlier["config"]["policies"].get(n))
    figures: dict = {"config": {**config, "policies": {
        n: policies[n] for n in [*names, *{n for r in reused.values() for n in r}]}},
        **({"reused_from": args.reuse} if args.reuse else {})}
    bar = tqdm(total=len(args.datasets) * len(names) * args.seeds * args.rounds, unit="round",
               file=sys.stderr, desc="eval_capture")
    all_summaries = {}
    for ds_name in args.datasets:
        ds, ftr = load(ds_name, args.seeds, args, enc)
        encoder = CachedEncoder(enc, ds["train"], ftr)
        runs: dict[str, list[Run]] = {}
        for name in names:
            bar.set_postfix_str(f"{ds_name} {name}")
            runs[name] = [replay(encoder, ds, policies[name], seed, args, bar)
                          for seed in range(args.seeds)]
            tqdm.write(f"{ds_name} {name}: {runs[name][0].seconds:.0f} s "
                       f"(seed 0), final accuracy {runs[name][0].accuracy[-1]:.4f}",
                       file=sys.stderr)
        summary = {**summarize(ds_name, ds, runs, args.seeds), **reused.get(ds_name, {})}
        compare(summary)
        all_summaries[ds_name] = summary
        shown = sorted(summary, key=lambda n: (n not in POLICIES, n not in names,
                                               list(POLICIES).index(n) if n in POLICIES else 0))
        print(f"\n== {ds_name}: {len(ds['classes'])} classes, start {args.start}/label, "
              f"{args.rounds} rounds of {args.per_round} labels from {args.chunk} invokes, "
              f"{args.seeds} seed(s); encoder misses {encoder.misses}")
        rows = []
        for k in range(args.rounds + 1):
            row: list[object] = [k, f"{summary[names[0]]['labels'][k]:g}"]
            for n in shown:
                row += [summary[n]["accuracy"][k], summary[n]["macro_f1"][k]]
            rows.append(row)
        print_table(["round", "labels", *[f"{n} {m}" for n in shown for m in ("acc", "F1")]],
                    rows)
        print()
        rows = []
        for n in shown:
            f = summary[n]
            ltt = f.get("labels_to_target")
            rows.append([n, f["final_accuracy"], f["final_macro_f1"],
                         "-" if f["anchor"] is None else f["anchor"],
                         "-" if f["anchor"] is None else
                         f"{100 * (f['final_accuracy'] - f['anchor']):+.1f}",
                         "-" if "labels_to_target" not in f else ">1" if ltt is None
                         else f"{ltt:.2f}", f"{f['coverage']:g}",
                         f"{f['effective_classes']:g}",
                         f"{f['rare_labels']:g} / {f['rare_classes_covered']:g} of "
                         f"{f['rare_classes']}",
                         " ".join(f"{s}:{v:g}" for s, v in f["labels_by_strategy"].items()),
                         f"{f['promoted']}/{f['promoted'] + f['not_promoted']}" + "".join(
                             f" {g:+.1f}" for g in f.get("rejected_candidates_gain_pts", [])),
                         "".join("Y" if v else "n" for v in f["targets"].values()),
                         f"{f['wall_seconds']:.0f}" + ("" if n in names else " (reused)")])
        print_table(["policy", "final acc", "final F1", "anchor", "Δ pts", "labels→target",
                     "coverage", "eff. classes", "rare labels / covered", "labels by strategy",
                     "promoted", "targets", "wall s"], rows)
        print("labels→target: labels to first reach random-only's final accuracy / its total; "
              "promoted: training runs promoted / all, then per rejected candidate its test "
              "accuracy minus the live model's (pts); targets: half_labels near_margin spread "
              "(Y met, n not)")
        figures[ds_name] = summary
    bar.close()
    # Which candidate (not a reference policy) meets the targets best, over the datasets.
    scores = {}
    for n in {n for s in all_summaries.values() for n in s}:
        if n in ("random", "margin", "mix") or any(n not in s for s in all_summaries.values()):
            continue
        met = sum(v for s in all_summaries.values() for v in s[n]["targets"].values())
        acc = float(np.mean([s[n]["final_accuracy"] for s in all_summaries.values()]))
        scores[n] = (met, acc)
    if scores:
        best = max(scores, key=lambda n: scores[n])
        figures["best_candidate"] = {"name": best, "targets_met": scores[best][0],
                                     "mean_final_accuracy": round(scores[best][1], 4)}
        print(f"\nbest candidate: {best} (targets met {scores[best][0]} of "
              f"{sum(len(s[best]['targets']) for s in all_summaries.values())}, mean final "
              f"accuracy {scores[best][1]:.4f})")
    emit_json("capture", figures)


if __name__ == "__main__":
    main()
