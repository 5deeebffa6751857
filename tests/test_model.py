"""The use case: labels + annotated samples → zero-shot or trained model version."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelloop.ml.build import LabelSpec, build_model, is_trainable
from labelloop.ml.zeroshot import ZERO_SHOT_TEMPERATURE, prior_texts

ROOT = Path(__file__).resolve().parents[1]
LABELS = [LabelSpec("travel", "Flights, hotels and trips"), LabelSpec("cooking"),
          LabelSpec("weather", "Forecasts, rain, temperature")]
SAMPLES = [
    ("Book me a flight to Rome", "travel"), ("Find a cheap hotel in Lisbon", "travel"),
    ("What time does my train leave?", "travel"), ("How long should I boil an egg?", "cooking"),
    ("Give me a recipe for pancakes", "cooking"), ("How do I make tomato sauce?", "cooking"),
    ("Will it rain tomorrow?", "weather"), ("How hot will it be this weekend?", "weather"),
    ("Is there snow in the forecast?", "weather"),
]
QUERIES = [("I need a plane ticket to Berlin", "travel"),
           ("What can I bake with apples?", "cooking"),
           ("Do I need an umbrella today?", "weather")]


def test_prior_texts_make_names_readable_and_use_descriptions():
    assert prior_texts("card_arrival") == ["card arrival"]
    assert prior_texts("lost-card", "The card is lost") == [
        "lost card", "lost card: The card is lost"]
    assert prior_texts("x", "  ") == ["x"]


def test_trainable_needs_two_labels_with_two_samples():
    assert not is_trainable([])
    assert not is_trainable(["a", "a", "b"])
    assert is_trainable(["a", "a", "b", "b"])


def test_zero_shot_until_two_labels_have_two_samples(encoder):
    texts = [t for t, _ in SAMPLES[:3]] + [SAMPLES[3][0]]
    labels = [y for _, y in SAMPLES[:3]] + [SAMPLES[3][1]]
    model = build_model(encoder, LABELS, encoder.featurize(texts), labels)
    assert model.zero_shot and model.head.zero_shot
    assert model.cv_accuracy is None and model.sample_count == 4
    assert model.head.temperature == ZERO_SHOT_TEMPERATURE
    f = encoder.featurize([q for q, _ in QUERIES])
    assert list(model.head.predict(f.embeddings)) == [y for _, y in QUERIES]


def test_trained_model_reports_cross_validation_and_predicts(encoder):
    f = encoder.featurize([t for t, _ in SAMPLES])
    model = build_model(encoder, LABELS, f, [y for _, y in SAMPLES])
    assert not model.zero_shot
    assert model.head.classes == ("cooking", "travel", "weather")
    assert len(model.cv_predictions) == len(SAMPLES) == len(model.cv_confidences)
    assert set(model.cv_per_label_accuracy) == {"travel", "cooking", "weather"}
    assert model.cv_accuracy >= 0.6 and 0 <= model.cv_ece <= 1
    q = encoder.featurize([t for t, _ in QUERIES])
    proba = model.head.predict_proba(q.embeddings, q.tokens)
    assert list(model.head.classes_[proba.argmax(1)]) == [y for _, y in QUERIES]
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_labels_without_samples_stay_predictable(encoder):
    f = encoder.featurize([t for t, y in SAMPLES if y != "weather"])
    labels = [y for _, y in SAMPLES if y != "weather"]
    model = build_model(encoder, LABELS, f, labels)
    assert "weather" in model.head.classes and not model.zero_shot
    q = encoder.featurize(["Will it snow tonight? Check the forecast"])
    assert model.head.predict(q.embeddings, q.tokens)[0] == "weather"


def test_bad_input_is_rejected(encoder):
    f = encoder.featurize(["a", "b"])
    with pytest.raises(ValueError, match="unknown labels"):
        build_model(encoder, LABELS, f, ["travel", "nope"])
    with pytest.raises(ValueError, match="unique"):
        build_model(encoder, [LabelSpec("a"), LabelSpec("a")], f, ["a", "a"])
    with pytest.raises(ValueError, match="one label per sample"):
        build_model(encoder, LABELS, f, ["travel"])


@pytest.mark.parametrize("encoder", ["fast", "accurate"])
def test_demo_trains_the_example_function_and_prints_predictions(encoder, encoder_dir,
                                                                 accurate_encoder_dir):
    folder = encoder_dir if encoder == "fast" else accurate_encoder_dir
    out = subprocess.run([sys.executable, "-m", "labelloop.cli", "demo", "--encoder", encoder,
                          "--encoder-dir", str(folder)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    text = out.stdout
    name = "all-MiniLM-L6-v2" if encoder == "fast" else "all-mpnet-base-v2"
    assert f"encoder: {name}" in text
    assert "zero-shot" in text and "cross-validated accuracy" in text
    lines = text.split("predictions:")[1].strip().splitlines()[::2]
    predicted = [line.split()[0] for line in lines]
    assert predicted == ["billing", "bug_report", "feature_request", "account_access", "praise",
                         "billing"]


def test_demo_names_a_bad_file_column(tmp_path, encoder_dir):
    bad = tmp_path / "samples.csv"
    bad.write_text("txt,label\nhello,billing\n")
    out = subprocess.run([sys.executable, "-m", "labelloop.cli", "demo", "--samples", str(bad),
                          "--encoder-dir", str(encoder_dir)], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode != 0 and "missing: text" in out.stderr
