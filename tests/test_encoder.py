"""The encoders' requirements: batch invariance, fidelity to fp32, meaning, window handling.

Each requirement runs over both encoders (fast: all-MiniLM-L6-v2; accurate: all-mpnet-base-v2).
"""

import hashlib
import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES

from labelloop.encoder import Encoder, EncoderNotBuilt, Encoders

# Upstream hashes of the pinned sources, and the window each model was trained with.
PINNED = {"fast": {"model.safetensors": "53aa51172d142c89", "tokenizer.json": "be50c3628f2bf5bb",
                   "dim": 384, "window": 256, "variant": "static-int8"},
          "accurate": {"model.safetensors": "78c0197b6159d926",
                       "tokenizer.json": "b8be2c30ba5dd723", "dim": 768, "window": 384,
                       "variant": "weight-int8"}}

PARAPHRASES = [
    # (text, paraphrase, unrelated)
    ("How do I reset my password?", "I forgot my password and need to change it",
     "What is the weather like in Paris tomorrow?"),
    ("My card has not arrived yet", "I am still waiting for my new card to be delivered",
     "Play some jazz music in the kitchen"),
    ("Cancel my subscription", "I want to stop my monthly plan",
     "How many calories are in an apple?"),
    ("Book a table for two tonight", "Reserve a restaurant for 2 people this evening",
     "Why was I charged a fee on my transfer?"),
    ("Translate hello into Spanish", "How do you say hello in Spanish",
     "Set a timer for ten minutes"),
    ("The app keeps crashing when I open it", "The application crashes on startup",
     "Recommend a good book about history"),
]


@pytest.fixture(params=["fast", "accurate"])
def any_encoder(request, encoders):
    return encoders[request.param]


@pytest.fixture
def any_reference(any_encoder):
    """fp32 reference embeddings, computed independently of our graphs (make_reference_fixture)."""
    name = "reference_embeddings" + ("" if any_encoder.name == "fast" else "-accurate") + ".npz"
    z = np.load(FIXTURES / name)
    return [str(t) for t in z["texts"]], z["embeddings"]


def test_embedding_does_not_depend_on_its_batch(any_encoder, any_reference):
    encoder = any_encoder
    texts, _ = any_reference
    # Every fourth by length, the longest included: each length class the reference has, at a
    # quarter of the cost (the accurate encoder pads the whole batch to the longest text).
    texts = sorted(texts, key=len)[::-4]
    alone = np.stack([encoder.embed_one(t) for t in texts])
    # Mixed lengths in one batch: short queries padded up to the long ones.
    batched = encoder.embed(texts, batch_size=len(texts))
    assert (alone * batched).sum(axis=1).min() >= 0.9999
    in_pairs = encoder.embed(texts, batch_size=2)
    assert (alone * in_pairs).sum(axis=1).min() >= 0.9999


def test_close_to_the_fp32_reference(any_encoder, any_reference):
    texts, ref = any_reference
    cos = (any_encoder.embed(texts) * ref).sum(axis=1)
    assert cos.mean() >= 0.99
    assert cos.min() >= 0.95


def test_paraphrases_score_above_unrelated_pairs(any_encoder):
    for text, para, other in PARAPHRASES:
        a, b, c = any_encoder.embed([text, para, other])
        assert float(a @ b) > float(a @ c) + 0.2, (text, float(a @ b), float(a @ c))


def test_embeddings_are_unit_norm_and_ordered(any_encoder):
    encoder, dim = any_encoder, PINNED[any_encoder.name]["dim"]
    texts = ["a much longer text than the next one, with several words in it", "short"]
    both = encoder.embed(texts)
    assert both.shape == (2, dim) and both.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(both[1], encoder.embed_one("short"), atol=1e-4)
    assert encoder.embed([]).shape == (0, dim)
    with pytest.raises(TypeError):
        encoder.embed("not a list")


def test_over_long_text_is_truncated_at_the_window_not_rejected(any_encoder):
    encoder = any_encoder
    long_text = "the parcel never arrived and nobody answers " * 200
    tok = encoder._tokenizer
    assert len(tok.encode(long_text).ids) == PINNED[encoder.name]["window"]
    # Padding is to the longest text of the batch, not to a fixed 128.
    assert len(tok.encode("hello").ids) == 3
    v = encoder.embed_one(long_text)
    assert np.isfinite(v).all() and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    # Words past the window change nothing.
    np.testing.assert_allclose(encoder.embed_one(long_text + " completely different ending"), v,
                               atol=1e-6)


def test_wordpieces_drop_special_tokens_and_repeat(any_encoder):
    encoder = any_encoder
    f = encoder.featurize(["card card card", "card"])
    assert f.tokens[0].tolist() == f.tokens[1].tolist() and len(f.tokens[1]) == 1
    ids = encoder._tokenizer.encode("card").ids
    assert set(ids) - set(f.tokens[0].tolist()) == set(encoder.manifest.special_ids) & set(ids)
    assert encoder.wordpieces(["card"])[0].tolist() == f.tokens[1].tolist()
    np.testing.assert_allclose(f.embeddings, encoder.embed(["card card card", "card"]), atol=1e-6)


def test_session_is_created_lazily_once(encoder_dir):
    enc = Encoder(encoder_dir)
    assert "_session" not in enc.__dict__  # nothing heavy at construction
    enc.embed_one("hello")
    session = enc.__dict__["_session"]
    enc.embed(["again", "and again"])
    assert enc.__dict__["_session"] is session


def test_manifest_pins_sources_and_matches_files(any_encoder):
    expected, model_dir = PINNED[any_encoder.name], any_encoder.model_dir
    manifest = json.loads((model_dir / "manifest.json").read_text())
    pinned = {s["file"].rsplit("/", 1)[-1]: s["sha256"] for s in manifest["sources"]}
    assert pinned["model.safetensors"].startswith(expected["model.safetensors"])
    assert pinned["tokenizer.json"].startswith(expected["tokenizer.json"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((model_dir / name).read_bytes()).hexdigest() == digest
    assert manifest["variant"] == expected["variant"]
    assert manifest["max_tokens"] == expected["window"]


def test_a_model_kept_elsewhere_is_fetched_once_and_checked(accurate_encoder, tmp_path,
                                                            monkeypatch):
    """On Lambda the accurate model does not fit the layers: only its manifest and tokenizer
    are there, and model.onnx is fetched (from S3) on first use, checked against the manifest."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    layer = tmp_path / "encoder-accurate"
    layer.mkdir()
    for f in ("manifest.json", "tokenizer.json"):
        shutil.copy(accurate_encoder.model_dir / f, layer / f)
    fetched = []

    def fetch(dest):
        fetched.append(dest)
        shutil.copy(accurate_encoder.model_dir / "model.onnx", dest)

    enc = Encoder(layer, encoder="accurate", fetch_model=fetch)
    np.testing.assert_allclose(enc.embed_one("my card is blocked"),
                               accurate_encoder.embed_one("my card is blocked"), atol=1e-6)
    assert len(fetched) == 1 and not fetched[0].exists()  # moved into place once complete
    Encoder(layer, encoder="accurate", fetch_model=fetch).embed_one("again")
    assert len(fetched) == 1  # a second container on the same disk reuses the file

    for p in (tmp_path / "tmp").iterdir():
        p.unlink()
    corrupt = Encoder(layer, encoder="accurate",
                      fetch_model=lambda dest: dest.write_bytes(b"not the model"))
    with pytest.raises(EncoderNotBuilt, match="does not match its manifest"):
        corrupt.embed_one("x")
    assert not list((tmp_path / "tmp").iterdir())  # nothing half-fetched is left behind


def test_encoders_build_each_name_once_and_know_what_exists(encoder, tmp_path, monkeypatch):
    encs = Encoders()
    encs.put(encoder)
    assert encs["fast"] is encoder
    with pytest.raises(KeyError, match="unknown encoder 'huge'"):
        encs["huge"]
    monkeypatch.setenv("LABELLOOP_ACCURATE_ENCODER_DIR", str(tmp_path))  # nothing built there
    assert encs.available("fast") and not encs.available("accurate")
    assert not encs.available("huge")
    assert encs["accurate"] is encs["accurate"]


def test_missing_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderNotBuilt, match=r"build_encoder\.py --encoder accurate"):
        Encoder(tmp_path, encoder="accurate").embed_one("x")


def test_encoder_found_in_an_emulators_layer_folders(tmp_path, monkeypatch):
    from labelloop.encoder import (
        EMULATOR_LAYERS_ENV,
        LAMBDA_LAYERS_DIR,
        LAYERS_DIR,
        default_encoder_dir,
        dir_env,
    )

    assert not (LAMBDA_LAYERS_DIR / "encoder").exists()
    runtime, encoder_layer = tmp_path / "layer_0", tmp_path / "layer_1"
    (runtime / "python").mkdir(parents=True)
    for folder in ("encoder", "encoder-accurate"):
        (encoder_layer / folder).mkdir(parents=True)
        (encoder_layer / folder / "manifest.json").write_text("{}")
    for name in ("fast", "accurate"):
        monkeypatch.delenv(dir_env(name), raising=False)
    monkeypatch.setenv(EMULATOR_LAYERS_ENV, f"{runtime}:{encoder_layer}")
    assert default_encoder_dir() == encoder_layer / "encoder"
    assert default_encoder_dir("accurate") == encoder_layer / "encoder-accurate"
    monkeypatch.setenv(EMULATOR_LAYERS_ENV, str(runtime))
    assert default_encoder_dir() == LAYERS_DIR / "encoder"
    assert default_encoder_dir("accurate") == LAYERS_DIR / "encoder-accurate"
