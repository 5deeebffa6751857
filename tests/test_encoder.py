"""The encoder's requirements: batch invariance, fidelity to fp32, meaning, window handling."""

import hashlib
import json

import numpy as np
import pytest

from labelloop.encoder import Encoder, EncoderNotBuilt

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


def test_embedding_does_not_depend_on_its_batch(encoder, reference):
    texts, _ = reference
    alone = np.stack([encoder.embed_one(t) for t in texts])
    # Mixed lengths in one batch: short queries padded up to the long ones.
    batched = encoder.embed(texts, batch_size=len(texts))
    assert (alone * batched).sum(axis=1).min() >= 0.9999
    in_pairs = encoder.embed(texts, batch_size=2)
    assert (alone * in_pairs).sum(axis=1).min() >= 0.9999


def test_close_to_the_fp32_reference(encoder, reference):
    texts, ref = reference
    cos = (encoder.embed(texts) * ref).sum(axis=1)
    assert cos.mean() >= 0.99
    assert cos.min() >= 0.95


def test_paraphrases_score_above_unrelated_pairs(encoder):
    for text, para, other in PARAPHRASES:
        a, b, c = encoder.embed([text, para, other])
        assert float(a @ b) > float(a @ c) + 0.2, (text, float(a @ b), float(a @ c))


def test_embeddings_are_unit_norm_and_ordered(encoder):
    texts = ["a much longer text than the next one, with several words in it", "short"]
    both = encoder.embed(texts)
    assert both.shape == (2, 384) and both.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(both[1], encoder.embed_one("short"), atol=1e-4)
    assert encoder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        encoder.embed("not a list")


def test_over_long_text_is_truncated_at_the_window_not_rejected(encoder):
    long_text = "the parcel never arrived and nobody answers " * 200
    tok = encoder._tokenizer
    assert len(tok.encode(long_text).ids) == 256
    # Padding is to the longest text of the batch, not to a fixed 128.
    assert len(tok.encode("hello").ids) == 3
    v = encoder.embed_one(long_text)
    assert np.isfinite(v).all() and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    # Words past the window change nothing.
    np.testing.assert_allclose(encoder.embed_one(long_text + " completely different ending"), v,
                               atol=1e-6)


def test_wordpieces_drop_special_tokens_and_repeat(encoder):
    f = encoder.featurize(["card card card", "card"])
    assert f.tokens[0].tolist() == f.tokens[1].tolist()
    assert not set(f.tokens[0].tolist()) & {0, 100, 101, 102}
    assert encoder.wordpieces(["card"])[0].tolist() == f.tokens[1].tolist()
    np.testing.assert_allclose(f.embeddings, encoder.embed(["card card card", "card"]), atol=1e-6)


def test_session_is_created_lazily_once(encoder_dir):
    enc = Encoder(encoder_dir)
    assert "_session" not in enc.__dict__  # nothing heavy at construction
    enc.embed_one("hello")
    session = enc.__dict__["_session"]
    enc.embed(["again", "and again"])
    assert enc.__dict__["_session"] is session


def test_manifest_pins_sources_and_matches_files(encoder_dir):
    manifest = json.loads((encoder_dir / "manifest.json").read_text())
    pinned = {s["file"].rsplit("/", 1)[-1]: s["sha256"] for s in manifest["sources"]}
    assert pinned["model.safetensors"].startswith("53aa51172d142c89")
    assert pinned["tokenizer.json"].startswith("be50c3628f2bf5bb")
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((encoder_dir / name).read_bytes()).hexdigest() == digest
    assert manifest["variant"] == "static-int8" and manifest["max_tokens"] == 256


def test_missing_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderNotBuilt, match=r"build_encoder\.py"):
        Encoder(tmp_path).embed_one("x")


def test_encoder_found_in_an_emulators_layer_folders(tmp_path, monkeypatch):
    from labelloop.encoder import (
        EMULATOR_LAYERS_ENV,
        ENCODER_DIR_ENV,
        LAMBDA_ENCODER_DIR,
        REPO_ENCODER_DIR,
        default_encoder_dir,
    )

    assert not LAMBDA_ENCODER_DIR.exists()
    runtime, encoder_layer = tmp_path / "layer_0", tmp_path / "layer_1"
    (runtime / "python").mkdir(parents=True)
    (encoder_layer / "encoder").mkdir(parents=True)
    (encoder_layer / "encoder" / "manifest.json").write_text("{}")
    monkeypatch.delenv(ENCODER_DIR_ENV, raising=False)
    monkeypatch.setenv(EMULATOR_LAYERS_ENV, f"{runtime}:{encoder_layer}")
    assert default_encoder_dir() == encoder_layer / "encoder"
    monkeypatch.setenv(EMULATOR_LAYERS_ENV, str(runtime))
    assert default_encoder_dir() == REPO_ENCODER_DIR
