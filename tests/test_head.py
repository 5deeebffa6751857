"""The serving head: an immutable, pickle-free artifact served by numpy alone."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelloop.ml.head import FORMAT_VERSION, Head, softmax

ROOT = Path(__file__).resolve().parents[1]


def _head(lexical: bool = False) -> Head:
    rng = np.random.default_rng(0)
    kwargs = {}
    if lexical:
        kwargs = {"lexical_weight": 0.3, "lexical_vocab": np.array([5, 9, 40]),
                  "lexical_coef": rng.normal(size=(3, 3)), "lexical_intercept": [0.1, 0, -0.1]}
    return Head(classes=("a", "b", "c"), coef=rng.normal(size=(3, 4)),
                intercept=[0.5, 0.0, -0.5], temperature=0.7, **kwargs)


def test_predict_proba_is_a_temperature_softmax_in_class_order():
    head = _head()
    x = np.array([[0.1, -0.2, 0.3, 0.9]], dtype=np.float32)
    expected = softmax((x @ head.coef.T + head.intercept) / 0.7)
    np.testing.assert_allclose(head.predict_proba(x), expected, rtol=1e-5)
    assert head.predict(x)[0] == "abc"[int(expected.argmax())]


def test_lexical_part_matches_its_definition_and_needs_tokens():
    head = _head(lexical=True)
    x = np.zeros((1, 4), dtype=np.float32)
    tokens = [np.array([5, 7, 40])]  # 7 is outside the vocabulary: counts in the norm only
    lex = head.lexical_intercept + (head.lexical_coef[:, 0] + head.lexical_coef[:, 2]) / np.sqrt(3)
    emb = head.intercept

    def log_softmax(z):
        return z - np.log(np.exp(z - z.max()).sum()) - z.max()

    mixed = 0.7 * log_softmax(emb) + 0.3 * log_softmax(lex)
    np.testing.assert_allclose(head.predict_proba(x, tokens)[0], softmax(mixed / 0.7), rtol=1e-5)
    with pytest.raises(ValueError, match="tokens"):
        head.predict_proba(x)
    assert head.predict_proba(x, [np.array([], dtype=np.int32)]).shape == (1, 3)


@pytest.mark.parametrize("lexical", [False, True])
def test_artifact_round_trips_without_pickle(lexical):
    head = _head(lexical)
    data = head.to_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:  # raises if anything needs pickle
        assert int(z["format_version"]) == FORMAT_VERSION
    again = Head.from_bytes(data)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    tokens = [np.array([5, 9])] * 5 if lexical else None
    np.testing.assert_array_equal(again.predict_proba(x, tokens), head.predict_proba(x, tokens))
    assert again.classes == head.classes and again.zero_shot == head.zero_shot


def test_artifact_is_immutable():
    head = _head()
    with pytest.raises(ValueError):
        head.coef[0, 0] = 1.0
    with pytest.raises(AttributeError):
        head.temperature = 2.0


def test_invalid_heads_are_rejected():
    with pytest.raises(ValueError, match="coef"):
        Head(classes=("a", "b"), coef=np.zeros((3, 4)), intercept=[0, 0])
    with pytest.raises(ValueError, match="unique"):
        Head(classes=("a", "a"), coef=np.zeros((2, 4)), intercept=[0, 0])
    with pytest.raises(ValueError, match="temperature"):
        Head(classes=("a", "b"), coef=np.zeros((2, 4)), intercept=[0, 0], temperature=0)
    bad = io.BytesIO()
    np.savez(bad, format_version=np.int64(FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="format"):
        Head.from_bytes(bad.getvalue())


def test_serving_imports_neither_sklearn_nor_scipy(encoder_dir, tmp_path):
    """Load a head, featurize a text and predict in a fresh interpreter, then list modules."""
    path = tmp_path / "head.npz"
    path.write_bytes(_head(lexical=True).to_bytes())
    code = f"""
import sys
import numpy as np
from labelloop.encoder import Encoder
from labelloop.ml.head import Head
from labelloop.ml import build, zeroshot  # the build module must import sklearn lazily
head = Head.from_bytes(open({str(path)!r}, "rb").read())
f = Encoder({str(encoder_dir)!r}).featurize(["hello there"])
p = head.predict_proba(f.embeddings[:, :4], f.tokens)
assert p.shape == (1, 3)
print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
